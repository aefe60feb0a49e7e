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
import fractions
import logging
import threading
import time
from collections.abc import Callable

import av
import numpy as np
from aiortc.mediastreams import MediaStreamTrack

from appliance.hardware.echo import EchoCanceller
from appliance.hardware.errors import AudioDeviceError, BackendUnavailable
from appliance.hardware.gain import gain_factor, scale, volume_factor
from appliance.hardware.handoff import ThreadFedTrack
from appliance.hardware.interfaces import FarEndHook
from appliance.hardware.limiter import DEFAULT_CEILING_DBFS, SoftLimiter
from appliance.hardware.pi import alsa_cards
from appliance.hardware.resample import RATE, PlaybackResampler

log = logging.getLogger(__name__)

PERIOD = 960  # 20 ms: one Opus frame per read
PERIODS = 4   # 80 ms of ALSA buffer: enough for a busy Pi, little enough for a conversation
QUEUE_FRAMES = 10  # 200 ms; older audio is dropped rather than delayed


def _alsaaudio():
    try:
        import alsaaudio
    except ImportError as exc:
        raise BackendUnavailable("ALSA audio needs pyalsaaudio: apt install python3-alsaaudio, "
                                 "or pip install pyalsaaudio (builds against libasound2-dev)") from exc
    return alsaaudio


def _open_pcm(kind: str, device: str):
    alsaaudio = _alsaaudio()
    direction = alsaaudio.PCM_CAPTURE if kind == "capture" else alsaaudio.PCM_PLAYBACK
    try:
        return alsaaudio.PCM(direction, alsaaudio.PCM_NORMAL, device=device, channels=1, rate=RATE,
                             format=alsaaudio.PCM_FORMAT_S16_LE, periodsize=PERIOD, periods=PERIODS)
    except alsaaudio.ALSAAudioError as exc:
        raise AudioDeviceError(f"cannot open ALSA {kind} device {device!r}: {exc}{_unplugged_hint(device)}") from exc


def _unplugged_hint(device: str, proc=alsa_cards.PROC_ASOUND) -> str:
    card = alsa_cards.card_of(device)
    if card is None or alsa_cards.present(device, proc):
        return ""
    return (f"; there is no sound card {card!r}: plug the USB device in (udev/79-amtsklingel-audio.rules "
            f"names a speakerphone kioskaudio, a microphone kioskmic, a speaker kioskspeaker); "
            f"the kiosk takes it back within seconds")


class _Card:
    """The card behind an ALSA device name: whether it is there, and its name as last seen."""

    def __init__(self, device: str, proc) -> None:
        self.device, self.proc = device, proc
        self._name = alsa_cards.describe(device, proc) or f"ALSA {device}"

    @property
    def name(self) -> str:
        # Read again each time: the device plugged in after an unplug may be another model.
        self._name = alsa_cards.describe(self.device, self.proc) or self._name
        return self._name

    def present(self) -> bool:
        return alsa_cards.present(self.device, self.proc)


class CaptureTrack(ThreadFedTrack):
    """Audio track fed from a capture thread with 20 ms s16 mono 48 kHz chunks."""

    kind = "audio"

    def __init__(self, on_stop=None) -> None:
        super().__init__(QUEUE_FRAMES, on_stop)
        self._time_base = fractions.Fraction(1, RATE)
        self.dropped = 0

    def push(self, index: int, samples: bytes) -> None:
        """Queue one chunk whose first sample is number ``index``; any thread, never blocks."""
        if self._put((index, samples)):
            self.dropped += 1  # the deque dropped the oldest: keep the newest audio, not latency

    async def recv(self) -> av.AudioFrame:
        index, samples = await self._get()
        frame = av.AudioFrame.from_ndarray(np.frombuffer(samples, np.int16).reshape(1, -1),
                                           format="s16", layout="mono")
        frame.sample_rate = RATE
        # pts counts captured samples, so a dropped chunk shows as a gap in time.
        frame.pts = index
        frame.time_base = self._time_base
        return frame


class AlsaMicrophone:
    """Microphone on an ALSA capture device; capture runs only while a track is live."""

    def __init__(self, device: str = "default", *, echo: EchoCanceller | None = None,
                 open_pcm=_open_pcm, proc=alsa_cards.PROC_ASOUND) -> None:
        """``open_pcm(kind, device)`` and ``proc`` (``/proc/asound``) are replaced only in tests."""
        _alsaaudio()  # fail at start-up, not at the first call, if ALSA is missing
        self.device = device
        self._card = _Card(device, proc)
        self._open_pcm = open_pcm
        self.echo = echo
        self.gain = 1.0  # amplitude factor, from central's settings (set_gain_db)
        self.error: Exception | None = None
        self._track: CaptureTrack | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    @property
    def name(self) -> str:
        """E.g. "USB speakerphone Jabra SPEAK 410 USB (plughw:CARD=kioskaudio)"."""
        return self._card.name

    def present(self) -> bool:
        """False while the sound card the device names is unplugged."""
        return self._card.present()

    def track(self) -> MediaStreamTrack:
        self._stop_capture()
        pcm = self._open_pcm("capture", self.device)
        self.error = None
        self._stop = stop = threading.Event()
        self._track = track = CaptureTrack(on_stop=stop.set)
        self._thread = threading.Thread(target=self._capture, args=(pcm, track, stop),
                                        name="alsa-capture", daemon=True)
        self._thread.start()
        return track

    def _capture(self, pcm, track: CaptureTrack, stop: threading.Event) -> None:
        alsaaudio = _alsaaudio()
        chunk_bytes = PERIOD * 2
        pending = b""
        produced = 0
        started = time.monotonic()
        device_paced: bool | None = None
        try:
            while not stop.is_set():
                frames, data = pcm.read()
                if frames <= 0:  # overrun (-EPIPE): pyalsaaudio re-prepared the device
                    log.debug("ALSA capture overrun on %s (%d)", self.device, frames)
                    continue
                pending += data
                while len(pending) >= chunk_bytes:
                    samples = np.frombuffer(pending[:chunk_bytes], np.int16)
                    pending = pending[chunk_bytes:]
                    if self.echo is not None:
                        samples = self.echo.process(samples)
                    samples = scale(samples, self.gain)
                    track.push(produced, samples.tobytes())
                    produced += PERIOD
                # Plugins such as ALSA's null device return at once; a sound card
                # never delivers 200 ms of audio in 100 ms from a fresh start.  Pace
                # the former to real time; never second-guess the latter's clock.
                elapsed = time.monotonic() - started
                if device_paced is None and produced >= RATE // 5:
                    device_paced = elapsed >= produced / RATE / 2
                    if not device_paced:
                        log.info("ALSA device %r is not clocked; pacing capture in software", self.device)
                if device_paced is False and produced / RATE > elapsed:
                    time.sleep(produced / RATE - elapsed)
        except (alsaaudio.ALSAAudioError, OSError) as exc:
            self.error = AudioDeviceError(
                f"the microphone {self.name!r} stopped delivering sound ({exc}): it was unplugged or failed. "
                f"Plug it in again; the kiosk takes it back within seconds")
            log.error("%s", self.error)
            try:
                track._loop.call_soon_threadsafe(track.stop)  # the call sees the track end
            except RuntimeError:
                pass  # the loop closed at shutdown: nobody is left to tell
        finally:
            _close_quietly(pcm)

    def set_gain_db(self, gain_db: int) -> None:
        """Takes effect with the next 20 ms of sound, also during a call."""
        self.gain = gain_factor(gain_db)

    def _stop_capture(self) -> None:
        if self._track is not None:
            self._track.stop()
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=1)  # a read returns within one 20 ms period
            self._thread = None
        self._track = None

    def close(self) -> None:
        self._stop_capture()


class AlsaSpeaker:
    """Speaker on an ALSA playback device; resamples whatever it gets to 48 kHz mono s16."""

    def __init__(self, device: str = "default", *, far_end: FarEndHook | None = None,
                 limit_dbfs: float = DEFAULT_CEILING_DBFS, open_pcm=_open_pcm, proc=alsa_cards.PROC_ASOUND) -> None:
        """Opens the device now, so a wrong device name stops start-up with a clear message; a USB
        card that is merely unplugged is opened once it is there (``present()``, ``reopen()``)."""
        self.device = device
        self._card = _Card(device, proc)
        self._open_pcm = open_pcm
        self.far_end = far_end
        # Peaks stay below where the loudspeaker distorts, and the canceller's copy is taken after.
        self.limiter = SoftLimiter(limit_dbfs)
        # The echo canceller's clock estimate: how far the device has played (written minus queued).
        self.position_hook: Callable[..., None] | None = None
        self._underrun = False
        self.volume = 1.0  # amplitude factor, from central's settings (set_volume)
        self.frames_played = 0
        self._closed = False
        self._pcm = None
        if self._card.present():
            self._pcm = open_pcm("playback", device)
        else:
            log.warning("speaker %r is not plugged in; it is opened once it is", device)
        self._resample = PlaybackResampler()
        # One writer thread keeps frames in order and lets ALSA's blocking
        # write pace the caller without blocking the loop.
        self._writer = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="alsa-playback")

    @property
    def name(self) -> str:
        """As the microphone's, e.g. "USB speaker ... (plughw:CARD=kioskspeaker)"."""
        return self._card.name

    def present(self) -> bool:
        """False while the sound card the device names is unplugged."""
        return self._card.present()

    def reopen(self) -> None:
        """Open the device again after it failed (plugged in again); AudioDeviceError if it still cannot."""
        if self._closed:
            raise AudioDeviceError(f"speaker {self.device!r} is closed")
        self._writer.submit(self._ensure_open).result()

    def _ensure_open(self) -> None:
        if self._pcm is None:
            self._pcm = self._open_pcm("playback", self.device)

    async def play(self, frame: av.AudioFrame) -> None:
        if self._closed:
            raise AudioDeviceError(f"speaker {self.device!r} is closed")
        loop = asyncio.get_running_loop()
        for out in self._resample(frame):
            if self.volume != 1.0:  # before the echo canceller's copy: it must get what the room hears
                out = _scaled(out, self.volume)
            out = _limited(out, self.limiter)
            if self.far_end is not None:
                self.far_end(out)
            await loop.run_in_executor(self._writer, self._write, out.to_ndarray().tobytes())

    def set_volume(self, volume_pct: int) -> None:
        """Takes effect with the next frame, also during a call."""
        self.volume = volume_factor(volume_pct)

    def _write(self, data: bytes) -> None:
        alsaaudio = _alsaaudio()
        self._ensure_open()  # after a failure: the device may be back (AudioDeviceError if not)
        retries = 3
        while data:
            try:
                written = self._pcm.write(data)
            except alsaaudio.ALSAAudioError as exc:
                # Unplugged (or failed): this handle is spent; the next write or reopen() opens afresh.
                pcm, self._pcm = self._pcm, None
                _close_quietly(pcm)
                raise AudioDeviceError(
                    f"the speaker {self.name!r} refused sound ({exc}): it was unplugged or failed. "
                    f"Plug it in again; the kiosk takes it back within seconds") from exc
            if written <= 0:  # underrun (-EPIPE) between calls: the device was re-prepared
                log.debug("ALSA playback underrun on %s (%d)", self.device, written)
                self._underrun = True  # the device stood still: its played count no longer follows its clock
                retries -= 1
                if retries == 0:
                    return  # drop this frame rather than spin on a failing device
                continue
            self.frames_played += written
            data = data[written * 2:]
        if self.position_hook is not None:
            self._report_position()

    def _report_position(self) -> None:
        try:
            queued = PERIOD * PERIODS - self._pcm.avail()
        except _alsaaudio().ALSAAudioError:
            return  # the next write finds out what is wrong with the device
        self.position_hook(self.frames_played - max(0, queued), restart=self._underrun)
        self._underrun = False

    def close(self) -> None:
        self._closed = True
        self._writer.shutdown(wait=True)
        if self._pcm is not None:
            _close_quietly(self._pcm)
            self._pcm = None


def _close_quietly(pcm) -> None:
    try:
        pcm.close()
    except Exception as exc:  # noqa: BLE001 - a handle of a removed device may refuse even this
        log.debug("closing an ALSA handle failed: %s", exc)


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
