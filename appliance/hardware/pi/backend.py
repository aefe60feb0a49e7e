"""The ``pi`` hardware backend: opens the real devices from the configuration.

A missing setting stops start-up with a message naming it: on an appliance a
guessed GPIO or sound card would fail later and more confusingly.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from importlib.metadata import entry_points

from appliance.hardware.button import GpioCallButton
from appliance.hardware.echo import EchoCanceller
from appliance.hardware.errors import BackendUnavailable, HardwareError
from appliance.hardware.interfaces import LONG_PRESS_SECONDS, SELFTEST_HOLD_SECONDS, Camera, FarEndHook
from appliance.hardware.limiter import DEFAULT_CEILING_DBFS
from appliance.hardware.pi.audio import DEFAULT_CUSHION_MS, AlsaMicrophone, AlsaSpeaker
from appliance.hardware.pi.camera import PiCamera, picamera2_module
from appliance.hardware.pi.display import open_display  # noqa: F401  (open_hardware finds every opener here)
from appliance.hardware.pi.process_microphone import ProcessMicrophone
from appliance.hardware.pi.unit import open_unit  # noqa: F401  (open_hardware finds every opener here)
from appliance.hardware.pi.v4l2.camera import DEFAULT_BITRATE, UsbCamera
from appliance.hardware.pi.v4l2.choose import Wanted

log = logging.getLogger(__name__)

# lgpio drives /dev/gpiochip* and does PWM on every Pi including the 5, where
# RPi.GPIO no longer works.
DEFAULT_PIN_FACTORY = "lgpio"
_FACTORY_PACKAGES = {"lgpio": "python3-lgpio", "rpigpio": "python3-rpi-lgpio", "pigpio": "python3-pigpio"}


def _required(cfg: dict, section: str, key: str):
    if key not in cfg:
        raise HardwareError(f"hardware setting {section}.{key} is missing (needed by the pi backend)")
    return cfg[key]


def pin_factory(name: str = DEFAULT_PIN_FACTORY):
    """gpiozero's pin factory by name, as ``GPIOZERO_PIN_FACTORY`` would choose it."""
    found = [ep for ep in entry_points(group="gpiozero_pin_factories") if ep.name == name]
    if not found:
        raise BackendUnavailable(f"gpiozero has no pin factory {name!r}; is gpiozero installed?")
    try:
        return found[0].load()()
    except Exception as exc:  # ImportError for the library, or no GPIO chip on this machine
        package = _FACTORY_PACKAGES.get(name, f"the library of pin factory {name!r}")
        raise BackendUnavailable(f"GPIO pin factory {name!r} unavailable ({exc}): install {package} "
                                 "and run on a Raspberry Pi") from exc


CAMERA_SOURCES = ("auto", "picamera", "usb")


def pi_camera_count() -> int:
    """Cameras libcamera sees on the Pi's camera connectors (0 where picamera2 is missing)."""
    return len(picamera2_module().Picamera2.global_camera_info())


def open_pi_camera(cfg: dict) -> PiCamera:
    return PiCamera(cfg.get("width", 1280), cfg.get("height", 720), cfg.get("fps", 30),
                    cfg.get("bitrate", 1_500_000), camera_num=cfg.get("camera_num", 0),
                    hardware_encoder=cfg.get("hardware_encoder"))


def open_usb_camera(cfg: dict) -> UsbCamera:
    wanted = Wanted(cfg.get("format", "auto"), cfg.get("width", 1280), cfg.get("height", 720), cfg.get("fps", 30))
    # A webcam not plugged in at start is a missing device, as one pulled out later: the kiosk starts
    # and shows it (the Pi camera's ribbon cannot come loose while running, so it fails at start).
    return UsbCamera(wanted, cfg.get("device", "auto"), missing_ok=True,
                     bitrate=cfg.get("bitrate", DEFAULT_BITRATE))


def open_camera(cfg: dict, *, count_pi_cameras: Callable[[], int] = pi_camera_count,
                open_pi: Callable[[dict], Camera] = open_pi_camera,
                open_usb: Callable[[dict], Camera] = open_usb_camera) -> Camera:
    """The camera ``[hardware.camera] source`` names: "picamera", "usb", or "auto" (the Pi camera
    when libcamera sees one, else the best USB camera)."""
    source = cfg.get("source", "auto")
    if source not in CAMERA_SOURCES:
        raise HardwareError(f"hardware setting camera.source = {source!r} is unknown: use \"auto\", \"picamera\" "
                            "(the camera on the Pi's ribbon cable, Raspberry Pi OS base) or \"usb\" (a USB webcam)")
    if source == "picamera":
        return open_pi(cfg)
    if source == "usb":
        return open_usb(cfg)
    try:
        pi_cameras = count_pi_cameras()
        pi_said = f"libcamera sees {pi_cameras} Pi camera(s)"
    except BackendUnavailable as exc:  # Debian base, or not a Pi: no libcamera
        pi_cameras, pi_said = 0, f"no Pi camera support ({exc})"
    if pi_cameras:
        return open_pi(cfg)
    log.info("camera source auto: %s; taking a USB camera", pi_said)
    return open_usb(cfg)


def open_microphone(cfg: dict, echo: EchoCanceller | None = None) -> AlsaMicrophone:
    return AlsaMicrophone(_required(cfg, "microphone", "device"), echo=echo)


def open_microphone_with_echo(cfg: dict, delay_ms: int, report_s: float) -> ProcessMicrophone:
    """The microphone and its echo canceller in a process of their own (process_microphone.py says why);
    the canceller's speaker side is the microphone's ``echo``."""
    return ProcessMicrophone(_required(cfg, "microphone", "device"), delay_ms=delay_ms, report_s=report_s)


def open_speaker(cfg: dict, far_end: FarEndHook | None = None) -> AlsaSpeaker:
    return AlsaSpeaker(_required(cfg, "speaker", "device"), far_end=far_end,
                       limit_dbfs=cfg.get("limit_dbfs", DEFAULT_CEILING_DBFS),
                       cushion_ms=cfg.get("cushion_ms", DEFAULT_CUSHION_MS))


def open_button(cfg: dict, loop: asyncio.AbstractEventLoop | None = None) -> GpioCallButton:
    pin, led_pin = _required(cfg, "button", "pin"), _required(cfg, "button", "led_pin")
    return GpioCallButton(pin, led_pin, pin_factory=pin_factory(cfg.get("pin_factory", DEFAULT_PIN_FACTORY)),
                          loop=loop, long_press_s=cfg.get("long_press_s", LONG_PRESS_SECONDS),
                          selftest_hold_s=cfg.get("selftest_hold_s", SELFTEST_HOLD_SECONDS))
