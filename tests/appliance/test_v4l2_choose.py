"""Choosing the USB camera and its format from what real webcams report (recorded listings in data/v4l2/)."""
from fractions import Fraction
from pathlib import Path

import pytest

from appliance.hardware.errors import CameraError
from appliance.hardware.pi.v4l2.choose import Wanted, choose_camera, choose_mode
from appliance.hardware.pi.v4l2.devices import parse_listing, skip_reason
from appliance.hardware.software_video import SOFTWARE_FPS, SOFTWARE_SIZE

DATA = Path(__file__).parent / "data" / "v4l2"
C920 = "/dev/v4l/by-id/usb-046d_HD_Pro_Webcam_C920_8F3E2C1F-video-index0"
C270 = "/dev/v4l/by-id/usb-046d_0825_2B7D9F60-video-index0"


def listing(name: str, path: str | None = None):
    return parse_listing((DATA / f"{name}.txt").read_text(), path or f"/dev/{name}")


def chosen(name: str, **kwargs):
    encoded = kwargs.pop("encoded", None)
    choice = choose_camera([listing(name)], Wanted(**kwargs), encoded=encoded)
    return choice.mode.fourcc, choice.mode.width, choice.mode.height, choice.send_fps


def test_the_c920_listing_reads_as_the_camera_reports_itself():
    c920 = listing("logitech-c920-h264", C920)
    assert (c920.driver, c920.card, c920.is_usb) == ("uvcvideo", "HD Pro Webcam C920", True)
    assert [f.fourcc for f in c920.formats] == ["YUYV", "H264", "MJPG"]
    yuyv = {(s.width, s.height): s.rates for s in c920.formats[0].sizes}
    assert yuyv[(1280, 720)] == (10, Fraction(15, 2), 5)  # USB 2.0 carries uncompressed 720p at 10 fps only
    assert len(yuyv) == 19 and yuyv[(2304, 1536)] == (2,)


def test_the_c920_sends_its_own_h264_at_the_configured_size():
    choice = choose_camera([listing("logitech-c920-h264", C920)], Wanted(width=1280, height=720, fps=30))
    assert choice.name == "USB HD Pro Webcam C920 (H.264 1280x720 30 fps)"
    assert choice.device.path == C920


def test_frames_come_at_the_size_a_pi_encodes_in_software():
    # Asked for frames (the clerk's browser has no H.264): raw YUYV needs no decoding.
    assert chosen("logitech-c920-h264", encoded=False) == ("YUYV", *SOFTWARE_SIZE, SOFTWARE_FPS)
    assert chosen("logitech-c270") == ("YUYV", 640, 360, 15)
    # MJPEG only: the nearest size, every other frame of 30 fps dropped.
    assert chosen("cheap-mjpeg-only") == ("MJPG", 640, 360, 15)
    # No 16:9 size at all: the nearest one.
    assert chosen("yuyv-only") == ("YUYV", 640, 480, 15)
    # vivid has every raw format: the one the encoder takes as it is.
    assert chosen("vivid") == ("NV12", 640, 360, 15)


def test_frames_at_a_smaller_configured_size_and_rate_come_so():
    # The QEMU image test asks vivid for little, as emulation is slow: no 4:3 size, the nearest.
    assert chosen("vivid", width=320, height=240, fps=15) == ("NV12", 320, 180, 15)
    assert chosen("logitech-c270", width=320, height=240, fps=10) == ("YUYV", 320, 240, 10)
    # Larger than the software encoder affords: capped.
    assert chosen("logitech-c270", width=1920, height=1080, fps=30) == ("YUYV", 640, 360, 15)


def test_a_format_set_by_hand_is_taken_at_the_configured_size():
    assert chosen("logitech-c920-h264", format="mjpeg") == ("MJPG", 1280, 720, 30)
    assert chosen("logitech-c270", format="mjpeg", width=1280, height=720, fps=30) == ("MJPG", 1280, 720, 30)
    # Raw 720p comes at 10 fps over USB 2.0: the rate counts first, so a smaller size at 30 fps.
    assert chosen("logitech-c920-h264", format="raw", width=1280, height=720, fps=30) == ("YUYV", 800, 448, 30)
    # The rate the camera cannot reach anywhere: the fastest it has.
    assert chosen("logitech-c270", format="raw", width=1280, height=960, fps=30) == ("YUYV", 640, 480, 30)


def test_packets_only_from_a_camera_with_h264():
    assert chosen("logitech-c920-h264", encoded=True) == ("H264", 1280, 720, 30)
    with pytest.raises(CameraError, match="offers no H.264"):
        chosen("logitech-c270", encoded=True)
    with pytest.raises(CameraError, match="offers no H.264"):
        chosen("cheap-mjpeg-only", format="h264")
    # Set to H.264, but the clerk's browser cannot take it: frames at the software size.
    assert chosen("logitech-c920-h264", format="h264", encoded=False) == ("YUYV", 640, 360, 15)


def test_a_device_is_chosen_by_capability_not_by_number():
    nodes = [listing("pi4-codec-decode", "/dev/video0"), listing("pi4-isp-capture", "/dev/video1"),
             listing("logitech-c270", "/dev/video2"), listing("logitech-c920-metadata", "/dev/video3"),
             listing("logitech-c920-h264", "/dev/video4")]
    assert choose_camera(nodes, Wanted()).device.card == "HD Pro Webcam C920"  # it has H.264
    # Frames are as good from both webcams: the same one on every boot, by name.
    assert choose_camera(nodes, Wanted(), encoded=False).device.path == "/dev/video2"
    assert choose_camera(nodes, Wanted(), device="/dev/video2").device.card == "UVC Camera (046d:0825)"


def test_nodes_that_are_no_camera_are_named_with_the_reason():
    reasons = {name: skip_reason(listing(name)) for name in
               ("pi4-codec-decode", "pi4-isp-capture", "logitech-c920-metadata", "vivid", "logitech-c270")}
    assert "memory to memory" in reasons["pi4-codec-decode"]
    assert "Raspberry Pi's own" in reasons["pi4-isp-capture"]
    assert "metadata" in reasons["logitech-c920-metadata"]
    assert reasons["vivid"] is None and reasons["logitech-c270"] is None
    with pytest.raises(CameraError) as caught:
        choose_camera([listing("pi4-codec-decode"), listing("logitech-c920-metadata")], Wanted())
    assert "no usable USB camera" in str(caught.value) and "/dev/pi4-codec-decode" in str(caught.value)
    with pytest.raises(CameraError, match="no video devices at all"):
        choose_camera([], Wanted())


def test_a_configured_device_that_is_missing_says_what_to_check():
    with pytest.raises(CameraError, match="/dev/v4l/by-id/"):
        choose_camera([listing("logitech-c270", C270)], Wanted(), device="/dev/v4l/by-id/usb-gone-video-index0")
    with pytest.raises(CameraError, match="format 'jpeg' is unknown"):
        Wanted(format="jpeg")


def test_stepwise_sizes_and_rates_offer_the_common_ones():
    text = """Driver Info:
	Driver name      : example
	Card type        : Stepwise Cam
	Bus info         : usb-1
	Device Caps      : 0x04200001
ioctl: VIDIOC_ENUM_FMT
	Type: Video Capture

	[0]: 'YUYV' (YUYV 4:2:2)
		Size: Stepwise 320x180 - 1280x720 with step 16/4
			Interval: Stepwise 0.033s - 1.000s with step 0.000s (1.000-30.000 fps)
"""
    cam = parse_listing(text, "/dev/video9")
    sizes = {(s.width, s.height): s.rates for s in cam.formats[0].sizes}
    assert set(sizes) == {(320, 180), (320, 240), (640, 360), (640, 480), (800, 600), (960, 540), (1280, 720)}
    assert sizes[(640, 360)] == (30, 25, 24, 20, 15, 10, 5)
    assert choose_mode(cam, Wanted(), encoded=False).width == 640


def test_a_listing_that_is_not_one_fails_loudly():
    with pytest.raises(ValueError, match="no Driver name"):
        parse_listing("ioctl: VIDIOC_ENUM_FMT\n", "/dev/video0")
    with pytest.raises(ValueError, match="line 3"):
        parse_listing("Driver Info:\n\tDriver name : x\n\t\tSize: Discrete 640\n", "/dev/video0")
