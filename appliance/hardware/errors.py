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
