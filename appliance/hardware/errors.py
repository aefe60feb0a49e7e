"""The hardware layer's exceptions, one tree under the project's root.

Each class also inherits the matching built-in (as gpiozero does), so code that
already catches ``OSError`` around device I/O keeps working.
"""
from __future__ import annotations

from protocol.errors import AmtsklingelError


class HardwareError(AmtsklingelError, OSError):
    """A device could not be opened or failed while in use."""


class BackendUnavailable(HardwareError):
    """A backend was chosen whose modules or devices are not on this machine.

    The message says what to install or where to run it; the original
    ``ImportError`` (or device error) is chained as ``__cause__``.
    """


class UnknownBackend(HardwareError, ValueError):
    """The configuration names a backend that does not exist."""


class CameraError(HardwareError):
    """The camera failed to start or stopped delivering pictures."""


class AudioDeviceError(HardwareError):
    """An ALSA device could not be opened, read or written."""


class CodecUnavailable(HardwareError, RuntimeError):
    """The media library lacks the codec profile the camera's encoded stream needs (H.264 42e01f,
    packetization-mode 1): install the aiortc version the image pins."""


class EchoCancellerError(HardwareError, RuntimeError):
    """livekit's native library refused a call of the echo canceller (aec3_calls.py); the message has its reason."""


class DeviceUsageError(AmtsklingelError, ValueError):
    """A device was asked for something it cannot do (an unknown LED mode, audio of the wrong format,
    a test pattern size it does not draw): a mistake in the calling code, not a broken device."""


class DeviceStateError(AmtsklingelError, RuntimeError):
    """A device was used in the wrong order (written after closing, started twice, started unconnected)."""


class UnitError(HardwareError):
    """The unit's identity (serial number, model) could not be read; the message says where it was looked
    for and what to set instead."""


class DisplayError(HardwareError):
    """The screen's backlight could not be set (brightness or power)."""
