"""Open the appliance's hardware from its configuration.

Backends are chosen by name, per device or for all at once, the way
``GPIOZERO_PIN_FACTORY`` chooses gpiozero's pins::

    {"backend": "pi",                       # default for every device
     "camera": {"width": 1280, "height": 720, "fps": 30},
     "microphone": {"device": "plughw:CARD=Device"},
     "speaker": {"device": "plughw:CARD=Device"},
     "echo": {"enabled": true, "delay_ms": 120, "report_s": 0},  # report_s: log ERLE (echo_report.py)
     "button": {"pin": 17, "led_pin": 18, "backend": "fake"},
     "unit": {"serial": "fake-0001"}}      # the unit itself: serial, model, temperature

A backend's module is imported only when it is chosen, so the ``fake`` backend
runs where picamera2, ALSA or a GPIO chip are absent.
"""
from __future__ import annotations

import asyncio
import importlib
import logging
from dataclasses import dataclass

from appliance.hardware.echo import DEFAULT_DELAY_MS, EchoCanceller
from appliance.hardware.echo_report import ReportingEchoCanceller
from appliance.hardware.errors import BackendUnavailable, HardwareError, UnknownBackend
from appliance.hardware.interfaces import CallButton, Camera, Display, Microphone, Speaker, Unit

log = logging.getLogger(__name__)

BACKENDS = {"fake": "appliance.hardware.fake.backend", "pi": "appliance.hardware.pi.backend"}
DEVICES = ("camera", "microphone", "speaker", "button")
# Sections with a backend each: the devices and the unit itself (its serial, model, temperature).
SECTIONS = (*DEVICES, "unit", "display")
# What to install when a hardware module is missing, by the module's top-level name.
_INSTALL_HINTS = {
    "picamera2": "install python3-picamera2 / run on Raspberry Pi OS or Debian trixie with python3-libcamera",
    "libcamera": "install python3-picamera2 / run on Raspberry Pi OS or Debian trixie with python3-libcamera",
    "alsaaudio": "install python3-alsaaudio, or pip install pyalsaaudio (needs libasound2-dev)",
    "gpiozero": "install python3-gpiozero, or pip install gpiozero",
    "lgpio": "install python3-lgpio",
    "livekit": "pip install livekit (WebRTC echo cancellation)",
}


@dataclass
class Hardware:
    """The opened devices and the unit; ``echo`` is the canceller shared by microphone and speaker, if any."""

    camera: Camera
    microphone: Microphone
    speaker: Speaker
    button: CallButton
    unit: Unit
    echo: EchoCanceller | None = None
    display: Display | None = None  # the screen's backlight (brightness, off outside office hours)

    def close(self) -> None:
        """Close every device; one failing does not keep the others open."""
        for device in (self.camera, self.microphone, self.speaker, self.button, self.unit, self.echo,
                       self.display):
            if device is None:
                continue
            try:
                device.close()
            except Exception:
                log.exception("closing %s failed", type(device).__name__)


def _backend_of(config: dict, device: str) -> str:
    name = config.get(device, {}).get("backend", config.get("backend"))
    if name is None:
        raise UnknownBackend(f"no hardware backend configured for {device}: set \"backend\" to one of "
                             f"{', '.join(BACKENDS)}")
    if name not in BACKENDS:
        raise UnknownBackend(f"unknown hardware backend {name!r} for {device}; known: {', '.join(BACKENDS)}")
    return name


def _import_backend(name: str):
    try:
        return importlib.import_module(BACKENDS[name])
    except ImportError as exc:
        raise _unavailable(name, exc) from exc


def _unavailable(backend: str, exc: ImportError) -> BackendUnavailable:
    module = (exc.name or "").split(".")[0]
    hint = _INSTALL_HINTS.get(module, f"install the module {module or exc}")
    return BackendUnavailable(f"hardware backend {backend!r} cannot load {module or exc}: {hint}")


def _open(name: str, opener, *args):
    try:
        return opener(*args)
    except HardwareError:
        raise
    except ImportError as exc:
        raise _unavailable(name, exc) from exc


def open_hardware(config: dict, *, loop: asyncio.AbstractEventLoop | None = None) -> Hardware:
    """Open camera, microphone, speaker and call button as ``config`` says.

    Call from within the appliance's event loop (or pass ``loop``): the button
    delivers its callbacks there.  On failure nothing stays open.
    """
    backends = {section: _backend_of(config, section) for section in SECTIONS}
    modules = {name: _import_backend(name) for name in set(backends.values())}
    sections = {section: dict(config.get(section, {})) for section in SECTIONS}
    echo_cfg = config.get("echo", {})
    opened: list = []
    try:
        echo = None
        # Echo cancellation only makes sense for a real microphone near a real speaker.
        echo_wanted = echo_cfg.get("enabled", backends["microphone"] == "pi")
        delay_ms = echo_cfg.get("delay_ms", DEFAULT_DELAY_MS)
        report_s = echo_cfg.get("report_s", 0)
        # A real microphone is captured and cancelled in a process of its own, unless told otherwise
        # (appliance/hardware/pi/process_microphone.py says why).
        own_process = echo_wanted and backends["microphone"] == "pi" and echo_cfg.get("own_process", True)
        if echo_wanted and not own_process:
            echo = (ReportingEchoCanceller(delay_ms=delay_ms, report_s=report_s) if report_s
                    else EchoCanceller(delay_ms=delay_ms))
            opened.append(echo)

        def open_device(device, *args):
            name = backends[device]
            opener = getattr(modules[name], f"open_{device}")
            result = _open(name, opener, sections[device], *args)
            opened.append(result)
            return result

        camera = open_device("camera")
        if own_process:
            microphone = _open("pi", modules["pi"].open_microphone_with_echo, sections["microphone"],
                               delay_ms, report_s)
            opened.append(microphone)
            echo = microphone.echo
        else:
            microphone = open_device("microphone", echo)
        # Without a canceller, a fake microphone hears the speaker as a real one would: its room
        # takes what is played (the self-test's tone comes back through it; see hardware/fake/room.py).
        far_end = echo.far_end if echo else getattr(microphone, "hear", None)
        hardware = Hardware(
            camera=camera,
            microphone=microphone,
            speaker=open_device("speaker", far_end),
            button=open_device("button", loop),
            unit=open_device("unit"),
            echo=echo,
            display=open_device("display"),
        )
        if echo is not None and hasattr(hardware.speaker, "position_hook"):
            # The canceller follows the speaker's clock by how far its device has played.
            hardware.speaker.position_hook = echo.speaker_position
            # ... and learns of the silence it played when its device ran dry.
            hardware.speaker.silence_hook = echo.speaker_silence
    except BaseException:
        for device in reversed(opened):
            try:
                device.close()
            except Exception:
                log.exception("closing %s after a failed start failed", type(device).__name__)
        raise
    log.info("hardware opened: %s", ", ".join(f"{d}={b}" for d, b in backends.items()))
    return hardware
