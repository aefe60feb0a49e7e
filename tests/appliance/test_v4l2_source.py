"""Which camera the pi backend opens: ``[hardware.camera] source`` = auto, picamera or usb."""
import pytest

from appliance.hardware.errors import BackendUnavailable, CameraError, HardwareError
from appliance.hardware.pi.backend import open_camera


class Openers:
    def __init__(self, pi_cameras, usb_error: str | None = None) -> None:
        self.pi_cameras, self.usb_error = pi_cameras, usb_error
        self.opened: list[str] = []

    def count(self) -> int:
        if isinstance(self.pi_cameras, Exception):
            raise self.pi_cameras
        return self.pi_cameras

    def pi(self, cfg):
        self.opened.append("picamera")
        return "pi camera"

    def usb(self, cfg):
        if self.usb_error:
            raise CameraError(self.usb_error)
        self.opened.append("usb")
        return "usb camera"

    def open(self, **cfg):
        return open_camera(cfg, count_pi_cameras=self.count, open_pi=self.pi, open_usb=self.usb)


def test_auto_takes_the_pi_camera_when_libcamera_sees_one():
    openers = Openers(pi_cameras=1)
    assert openers.open() == "pi camera" and openers.opened == ["picamera"]


@pytest.mark.parametrize("pi_cameras", [0, BackendUnavailable("no libcamera on the Debian base")],
                         ids=["no-pi-camera", "debian-base"])
def test_auto_takes_a_usb_camera_otherwise(pi_cameras):
    openers = Openers(pi_cameras)
    assert openers.open(source="auto") == "usb camera"


def test_auto_without_any_camera_opens_the_usb_camera_as_missing(caplog):
    # The USB backend starts without a webcam (shown and reported missing until one is plugged in).
    openers = Openers(BackendUnavailable("install python3-picamera2"))
    with caplog.at_level("INFO"):
        assert openers.open() == "usb camera"
    assert "no Pi camera support (install python3-picamera2)" in caplog.text


def test_a_source_set_by_hand_is_taken_as_it_is():
    openers = Openers(pi_cameras=1)
    assert openers.open(source="usb") == "usb camera"
    assert Openers(pi_cameras=0).open(source="picamera") == "pi camera"
    with pytest.raises(HardwareError, match="camera.source = 'webcam' is unknown.*\"usb\""):
        openers.open(source="webcam")
