"""USB microphone and speaker through ALSA (pyalsaaudio).

Both sides run at 48 kHz mono s16 - Opus' native rate, so aiortc never has to
resample the microphone, and the rate AEC3 works best at.  ALSA is driven by
device name from the configuration (``plughw:CARD=Device``, ``default``,
``null`` in tests), so a ``plug`` device can convert for hardware that wants
something else.

Blocking ALSA calls run on threads, never in the asyncio loop: a stalled USB
device must not freeze the kiosk's user interface.

A USB device can be unplugged at any time: reading or writing it then fails
(pyalsaaudio raises ``ALSAAudioError``), which ends the capture track or makes
``play`` raise ``AudioDeviceError``. Neither object is spent by that: the
microphone opens its device afresh for every track, the speaker on the next
``play`` or ``reopen()``. ``present()`` tells whether the card is there
(appliance/hardware/pi/alsa_cards.py), so the kiosk notices an unplugged device
also between calls and takes it back once it is plugged in again.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import time
from collections.abc import Callable

import av
import numpy as np

from appliance.hardware.errors import AudioDeviceError, DeviceUsageError
from appliance.hardware.gain import scale, volume_factor
from appliance.hardware.interfaces import FarEndHook
from appliance.hardware.limiter import DEFAULT_CEILING_DBFS, SoftLimiter
from appliance.hardware.pi import alsa_cards
from appliance.hardware.pi.alsa_microphone import AlsaMicrophone as AlsaMicrophone  # both devices from here
from appliance.hardware.pi.alsa_microphone import CardDevice
from appliance.hardware.pi.alsa_pcm import (
    PERIOD,
    PLAYBACK_PERIODS,
    alsaaudio,
    avail,
    close_quietly,
    is_xrun,
    open_pcm,
    sizes,
)
from appliance.hardware.resample import RATE, PlaybackResampler

log = logging.getLogger(__name__)

PERIODS = PLAYBACK_PERIODS
# Silence written ahead of the clerk's first words (and again after an underrun): the clerk's voice
# arrives 20 ms at a time, so without it the device would run dry at the first late frame. 40 ms is
# what a busy Pi 4's writer thread may be late by; it is also what it adds to the clerk's delay.
# [hardware.speaker] cushion_ms sets another (the boot test's emulated CPU needs far more).
DEFAULT_CUSHION_MS = 40
MAX_CUSHION_MS = 500
CUSHION = DEFAULT_CUSHION_MS * RATE // 1000

class AlsaSpeaker(CardDevice):
    """Speaker on an ALSA playback device; resamples whatever it gets to 48 kHz mono s16."""

    def __init__(self, device: str = "default", *, far_end: FarEndHook | None = None,
                 limit_dbfs: float = DEFAULT_CEILING_DBFS, cushion_ms: float = DEFAULT_CUSHION_MS,
                 open_pcm=open_pcm, proc=alsa_cards.PROC_ASOUND) -> None:
        """Opens the device now, so a wrong device name stops start-up with a clear message; a USB
        card that is merely unplugged is opened once it is there (``present()``, ``reopen()``)."""
        if not isinstance(cushion_ms, (int, float)) or not 0 <= cushion_ms <= MAX_CUSHION_MS:
            raise DeviceUsageError(f"speaker cushion_ms must be a number from 0 to {MAX_CUSHION_MS} (milliseconds of "
                                   f"silence kept ahead of the clerk's voice), e.g. {DEFAULT_CUSHION_MS}; got {cushion_ms!r}")
        super().__init__(device, proc)
        self.cushion = round(cushion_ms * RATE / 1000)
        # The buffer holds the cushion, the frame being written and one more.
        self._periods = max(PLAYBACK_PERIODS, -(-self.cushion // PERIOD) + 2)
        self._open_pcm = open_pcm
        self.far_end = far_end
        # Peaks stay below where the loudspeaker distorts, and the canceller's copy is taken after.
        self.limiter = SoftLimiter(limit_dbfs)
        # The echo canceller's clock estimate: how far the device has played (written minus queued).
        self.position_hook: Callable[..., None] | None = None
        # ... and how much silence the device played unasked each time it ran dry (an underrun).
        self.silence_hook: Callable[[int], None] | None = None
        self._dry_at: float | None = None  # time.monotonic() when what was written will have played
        self._underrun = False
        self.volume = 1.0  # amplitude factor, from central's settings (set_volume)
        self.frames_played = 0
        self.underruns = 0
        self.topped_up = 0  # samples of silence written to keep the cushion (_top_up)
        self._closed = False
        self._pcm = None
        self._buffer = 0  # frames the device's buffer holds (ALSA's choice)
        self._running = False  # the device plays: no cushion needed before the next write
        if self.present():
            self._open()
        else:
            log.warning("speaker %r is not plugged in; it is opened once it is", device)
        self._resample = PlaybackResampler()
        # One writer thread keeps frames in order and lets ALSA's blocking
        # write pace the caller without blocking the loop.
        self._writer = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="alsa-playback")

    def reopen(self) -> None:
        """Open the device again after it failed (plugged in again); AudioDeviceError if it still cannot."""
        if self._closed:
            raise AudioDeviceError(f"speaker {self.device!r} is closed")
        self._writer.submit(self._ensure_open).result()

    def _ensure_open(self) -> None:
        if self._pcm is None:
            self._open()

    def _open(self) -> None:
        self._pcm = self._open_pcm("playback", self.device, self._periods)
        self._buffer = sizes(self._pcm).buffer
        self._running = False
        self._dry_at = None  # a fresh device: nothing played yet, nothing ran dry

    async def play(self, frame: av.AudioFrame) -> None:
        if self._closed:
            raise AudioDeviceError(f"speaker {self.device!r} is closed")
        loop = asyncio.get_running_loop()
        for out in self._resample(frame):
            if self.volume != 1.0:  # before the echo canceller's copy: it must get what the room hears
                out = _scaled(out, self.volume)
            out = _limited(out, self.limiter)
            await loop.run_in_executor(self._writer, self._write, out)

    def set_volume(self, volume_pct: int) -> None:
        """Takes effect with the next frame, also during a call."""
        self.volume = volume_factor(volume_pct)

    def _write(self, frame: av.AudioFrame) -> None:
        module = alsaaudio()
        self._ensure_open()  # after a failure: the device may be back (AudioDeviceError if not)
        data = frame.to_ndarray().tobytes()
        if not self._running:  # a fresh device (or one whose last write failed) starts with the cushion
            self._ran_dry()
            data = self._cushion() + data
        retries = 3
        while data:
            try:
                written = self._pcm.write(data)
            except module.ALSAAudioError as exc:
                if is_xrun(self._pcm, exc):
                    written = -1  # pyalsaaudio 0.10: prepared again on the next write
                else:
                    # Unplugged (or failed): this handle is spent; the next write or reopen() opens afresh.
                    pcm, self._pcm = self._pcm, None
                    close_quietly(pcm)
                    raise AudioDeviceError(
                        f"the speaker {self.name!r} refused sound ({exc}): it was unplugged or failed. "
                        f"Plug it in again; the kiosk takes it back within seconds") from exc
            if written <= 0:  # underrun (-EPIPE) between calls: the device was re-prepared
                self.underruns += 1
                # The 1st, 10th, 100th ...: the journal shows whether the cushion is long enough.
                log_at = log.info if str(self.underruns).rstrip("0") == "1" else log.debug
                log_at("ALSA playback underrun on %s (%d since start)", self.device, self.underruns)
                self._underrun = True  # the device stood still: its played count no longer follows its clock
                if self._running:
                    self._running = False
                    self._ran_dry()
                    data = self._cushion() + data
                retries -= 1
                if retries == 0:
                    return  # drop this frame rather than spin on a failing device
                continue
            self._running = True
            self.frames_played += written
            if self.far_end is not None:  # what the device took, in the order it plays it, after the limiter
                self.far_end(_frame_of(data[:written * 2]))
            data = data[written * 2:]
        self._top_up()
        self._after_write()

    def _top_up(self) -> None:
        """Keep the cushion in the device's buffer. When the clerk's voice comes late, or a frame of it is
        skipped on a busy unit, the device then plays silence that was written (and that the canceller
        heard as the far end) instead of running dry: an underrun stops the device, and the silence it
        plays until the next write is in nobody's far end, which throws the canceller off its delay."""
        if not self.cushion or not self._running or self.far_end is None:
            return  # without a canceller listening, an underrun only costs a new cushion
        # No more than the buffer takes without blocking this thread (dmix may give less than was asked).
        cushion = min(self.cushion, self._buffer - 2 * PERIOD)
        try:
            short = cushion - (self._buffer - avail(self._pcm))
            if short <= 0:
                return
            written = self._pcm.write(bytes(short * 2))
        except alsaaudio().ALSAAudioError:
            return  # an underrun after all, or a failed device: the next frame's write finds out
        if written > 0:
            self.frames_played += written
            self.topped_up += written
            if self.far_end is not None:
                self.far_end(_frame_of(bytes(written * 2)))

    def _ran_dry(self) -> None:
        """Tell the canceller how long the device played silence that was never written: from when the
        last write's sound ran out until now, when the next write starts it again (None: a fresh device,
        or one that stood still for a time nobody measured)."""
        if self.silence_hook is None:
            return
        silence = None if self._dry_at is None else max(0, round((time.monotonic() - self._dry_at) * RATE))
        self._dry_at = None
        self.silence_hook(silence)

    def _cushion(self) -> bytes:
        """Silence to write ahead of what comes next (the canceller hears it as the frames written)."""
        return bytes(self.cushion * 2)

    def _after_write(self) -> None:
        if self.position_hook is None and self.silence_hook is None:
            return
        try:
            queued = max(0, self._buffer - avail(self._pcm))
        except alsaaudio().ALSAAudioError:
            return  # the next write finds out what is wrong with the device
        # The device runs dry when what it holds now has played, unless more is written before.
        self._dry_at = time.monotonic() + queued / RATE
        if self.position_hook is not None:
            self.position_hook(self.frames_played - queued, restart=self._underrun)
            self._underrun = False

    def close(self) -> None:
        self._closed = True
        self._writer.shutdown(wait=True)
        if self._pcm is not None:
            close_quietly(self._pcm)
            self._pcm = None

def _frame_of(data: bytes) -> av.AudioFrame:
    out = av.AudioFrame.from_ndarray(np.frombuffer(data, np.int16).reshape(1, -1), format="s16", layout="mono")
    out.sample_rate = RATE
    return out


def _limited(frame: av.AudioFrame, limiter: SoftLimiter) -> av.AudioFrame:
    samples = frame.to_ndarray()
    limited = limiter(samples)
    if limited is samples:
        return frame
    out = av.AudioFrame.from_ndarray(limited, format="s16", layout="mono")
    out.sample_rate, out.pts = frame.sample_rate, frame.pts
    if frame.time_base is not None:
        out.time_base = frame.time_base
    return out


def _scaled(frame: av.AudioFrame, factor: float) -> av.AudioFrame:
    out = av.AudioFrame.from_ndarray(scale(frame.to_ndarray(), factor), format="s16", layout="mono")
    out.sample_rate, out.pts, out.time_base = frame.sample_rate, frame.pts, frame.time_base
    return out
