"""The rates the echo canceller works at, and ``[hardware.echo] rate`` as it is written in the settings.

Light on purpose (no numpy, no native library): the settings are checked at start-up with it, before any
device is opened. echo.py says when the canceller goes from the one rate to the other.
"""
from __future__ import annotations

from appliance.hardware.errors import DeviceUsageError

FULL_RATE = 48000    # what the microphone and the speaker run at, and AEC3 on a unit fast enough
SPEECH_RATE = 16000  # speech up to 8 kHz, on a unit too slow for the other
RATES = (FULL_RATE, SPEECH_RATE)
AUTO = "auto"


def rate_setting(value: object) -> int | None:
    """The setting (``"auto"`` or absent, 48000, 16000; also as the digits of a command line) as the canceller
    takes it: None for auto."""
    if value is None or value == AUTO:
        return None
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or value not in RATES:
        raise DeviceUsageError(f'[hardware.echo] rate must be "{AUTO}", {FULL_RATE} or {SPEECH_RATE}, not {value!r}')
    return int(value)
