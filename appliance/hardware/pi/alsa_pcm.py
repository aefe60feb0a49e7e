"""Opening an ALSA PCM with pyalsaaudio, and the few calls that differ between its versions.

The image has Debian trixie's pyalsaaudio 0.10, a development machine often 0.11 from PyPI. They
differ where it matters for a call:

- an underrun or overrun (-EPIPE): 0.11 returns -32 from ``write``; 0.10 raises ALSAAudioError
  ("Broken pipe") and prepares the device again on the next call. Either way the device is fine:
  :func:`is_xrun` tells such an error from a device that is gone;
- ``avail()`` is new in 0.11; 0.10 has the same count in ``htimestamp()``.

Both run at 48 kHz mono s16 (see audio.py). ALSA may give other period and buffer sizes than asked
for (``dmix`` and ``dsnoop`` impose their own periods): :func:`sizes` reads back what it chose.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

from appliance.hardware.errors import AudioDeviceError, BackendUnavailable
from appliance.hardware.pi import alsa_cards
from appliance.hardware.resample import RATE

log = logging.getLogger(__name__)

PERIOD = 960  # 20 ms: one Opus frame per read or write
# The speaker's buffer: 80 ms, of which it keeps about half filled (audio.py, CUSHION); more if its
# cushion is set longer.
PLAYBACK_PERIODS = 4
# The microphone's: a period is read as soon as it is full, so a longer buffer adds no delay; it only
# gives a stalled capture thread (a busy Pi, the echo canceller) 1 s before sound is lost. Lost sound
# (an overrun) costs more than the sound: the canceller's far end is paired with the microphone's
# samples by their count, and after a hole it can only guess how many it missed (echo_align.py).
CAPTURE_PERIODS = 50


def alsaaudio():
    try:
        import alsaaudio
    except ImportError as exc:
        raise BackendUnavailable("ALSA audio needs pyalsaaudio: apt install python3-alsaaudio, "
                                 "or pip install pyalsaaudio (builds against libasound2-dev)") from exc
    return alsaaudio


def open_pcm(kind: str, device: str, periods: int):
    """A playback or capture handle on ``device``, 48 kHz mono s16, with a buffer of ``periods`` periods
    of 20 ms (as near as ALSA can); AudioDeviceError if it cannot be opened."""
    module = alsaaudio()
    direction = module.PCM_CAPTURE if kind == "capture" else module.PCM_PLAYBACK
    try:
        pcm = module.PCM(direction, module.PCM_NORMAL, device=device, channels=1, rate=RATE,
                         format=module.PCM_FORMAT_S16_LE, periodsize=PERIOD, periods=periods)
    except module.ALSAAudioError as exc:
        raise AudioDeviceError(f"cannot open ALSA {kind} device {device!r}: {exc}{unplugged_hint(device)}") from exc
    got = sizes(pcm, periods)
    log.info("ALSA %s %r: period %d frames (%.1f ms), buffer %d frames (%.1f ms)", kind, device, got.period,
             got.period_ms, got.buffer, got.buffer_ms)
    return pcm


def unplugged_hint(device: str, proc=alsa_cards.PROC_ASOUND) -> str:
    card = alsa_cards.card_of(device)
    if card is None or alsa_cards.present(device, proc):
        return ""
    return (f"; there is no sound card {card!r}: plug the USB device in (udev/79-amtsklingel-audio.rules "
            f"names a speakerphone kioskaudio, a microphone kioskmic, a speaker kioskspeaker); "
            f"the kiosk takes it back within seconds")


@dataclass(frozen=True)
class Sizes:
    period: int  # frames
    buffer: int

    @property
    def period_ms(self) -> float:
        return self.period * 1000 / RATE

    @property
    def buffer_ms(self) -> float:
        return self.buffer * 1000 / RATE


def sizes(pcm, periods: int = PLAYBACK_PERIODS) -> Sizes:
    """The period and buffer ALSA chose; what was asked for if the handle cannot say."""
    try:
        info = pcm.info()
        return Sizes(int(info["period_size"]), int(info["buffer_size"]))
    except (AttributeError, KeyError, TypeError, ValueError):
        return Sizes(PERIOD, PERIOD * periods)


def avail(pcm) -> int:
    """Frames the device can take now (playback), or holds ready to read (capture)."""
    if hasattr(pcm, "avail"):
        return pcm.avail()
    return pcm.htimestamp()[2]


def is_xrun(pcm, exc: Exception) -> bool:
    """``exc`` from a read or write was an underrun or overrun (pyalsaaudio 0.10), not a failed device."""
    try:
        if pcm.state() == alsaaudio().PCM_STATE_XRUN:
            return True
    except Exception:  # noqa: BLE001 - a handle of a removed device may refuse even this
        pass
    return str(exc).startswith("Broken pipe")


def close_quietly(pcm) -> None:
    try:
        pcm.close()
    except Exception as exc:  # noqa: BLE001 - a handle of a removed device may refuse even this
        log.debug("closing an ALSA handle failed: %s", exc)
