"""The USB microphone through ALSA (pyalsaaudio): see appliance/hardware/pi/audio.py for both devices.

Capture runs only while a track is live, on two threads: one reads the device, the other cancels the
echo and hands 20 ms frames to the call (mic_backlog.py says why).
"""
from __future__ import annotations

import fractions
import logging
import threading
import time

import av
import numpy as np
from aiortc.mediastreams import MediaStreamTrack

from appliance.hardware.echo import EchoCanceller
from appliance.hardware.errors import AudioDeviceError
from appliance.hardware.gain import gain_factor, scale
from appliance.hardware.handoff import ThreadFedTrack
from appliance.hardware.pi import alsa_cards
from appliance.hardware.pi.alsa_pcm import CAPTURE_PERIODS, PERIOD, alsaaudio, avail, close_quietly, is_xrun, open_pcm
from appliance.hardware.pi.mic_backlog import Backlog
from appliance.hardware.resample import RATE

log = logging.getLogger(__name__)

QUEUE_FRAMES = 10  # 200 ms; older audio is dropped rather than delayed


class CardDevice:
    """The card behind an ALSA device name: what to call it, and whether it is there."""

    def __init__(self, device: str, proc) -> None:
        self.device, self._proc = device, proc
        self._name = alsa_cards.describe(device, proc) or f"ALSA {device}"

    @property
    def name(self) -> str:
        """E.g. "USB speakerphone Jabra SPEAK 410 USB (plughw:CARD=kioskaudio)"."""
        # Read again each time: the device plugged in after an unplug may be another model.
        self._name = alsa_cards.describe(self.device, self._proc) or self._name
        return self._name

    def present(self) -> bool:
        """False while the sound card the device names is unplugged."""
        return alsa_cards.present(self.device, self._proc)

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

class AlsaMicrophone(CardDevice):
    """Microphone on an ALSA capture device; capture runs only while a track is live."""

    def __init__(self, device: str = "default", *, echo: EchoCanceller | None = None,
                 open_pcm=open_pcm, proc=alsa_cards.PROC_ASOUND) -> None:
        """``open_pcm(kind, device, periods)`` and ``proc`` (``/proc/asound``) are replaced only in tests."""
        alsaaudio()  # fail at start-up, not at the first call, if ALSA is missing
        super().__init__(device, proc)
        self._open_pcm = open_pcm
        self.echo = echo
        self.gain = 1.0  # amplitude factor, from central's settings (set_gain_db)
        self.error: Exception | None = None
        self.overruns = 0
        self._track: CaptureTrack | None = None
        self._thread: threading.Thread | None = None
        self._worker: threading.Thread | None = None
        self._stop = threading.Event()

    def track(self) -> MediaStreamTrack:
        self._stop_capture()
        pcm = self._open_pcm("capture", self.device, CAPTURE_PERIODS)
        self.error = None
        self._stop = stop = threading.Event()
        self._track = track = CaptureTrack(on_stop=stop.set)
        # One thread reads the device, another cancels the echo and hands the frames to the call (mic_backlog.py).
        backlog = Backlog(PERIOD)
        self._thread = threading.Thread(target=self._capture, args=(pcm, backlog, track, stop),
                                        name="alsa-capture", daemon=True)
        self._worker = threading.Thread(target=self._deliver, args=(backlog, track, stop),
                                        name="alsa-capture-echo", daemon=True)
        self._thread.start()
        self._worker.start()
        return track

    def _deliver(self, backlog: Backlog, track: CaptureTrack, stop: threading.Event) -> None:
        produced = 0
        while not stop.is_set():
            for item in backlog.take(0.1):
                if isinstance(item, int):  # sound lost before the next frame: the canceller skips as much
                    if self.echo is not None and item:
                        self.echo.microphone_lost(item)
                    continue
                samples = np.frombuffer(item, np.int16)
                if self.echo is not None:
                    samples = self.echo.process(samples)
                track.push(produced, scale(samples, self.gain).tobytes())
                produced += PERIOD

    def _capture(self, pcm, backlog: Backlog, track: CaptureTrack, stop: threading.Event) -> None:
        module = alsaaudio()
        chunk_bytes = PERIOD * 2
        pending = b""
        produced = 0  # samples read and queued
        started = read_at = time.monotonic()
        unread = 0  # samples the device held at the last read, beyond what it returned
        device_paced: bool | None = None
        try:
            while not stop.is_set():
                try:
                    frames, data = pcm.read()
                except module.ALSAAudioError as exc:
                    if not is_xrun(pcm, exc):
                        raise
                    frames = -1  # pyalsaaudio prepares the device again on the next read
                if frames <= 0:  # overrun (-EPIPE): pyalsaaudio re-prepared the device
                    self.overruns += 1
                    log_at = log.info if str(self.overruns).rstrip("0") == "1" else log.debug
                    log_at("ALSA capture overrun on %s (%d since start)", self.device, self.overruns)
                    if self.echo is not None:
                        # Lost: what the device held unread at the last read and captured since (the buffer
                        # it dropped, until it starts again now), and the part of a frame waiting here.
                        lost = round((time.monotonic() - read_at) * RATE) + unread + len(pending) // 2
                        # Counted up to now: an overrun again at the next read (the device, re-prepared,
                        # overflows before this thread is back) counts only what it loses after this one.
                        read_at, unread = time.monotonic(), 0
                        backlog.put(lost)
                    pending = b""
                    continue
                read_at = time.monotonic()
                if self.echo is not None:
                    unread = _unread(pcm)
                pending += data
                while len(pending) >= chunk_bytes:
                    backlog.put(pending[:chunk_bytes])
                    pending = pending[chunk_bytes:]
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
        except (module.ALSAAudioError, OSError) as exc:
            self.error = AudioDeviceError(
                f"the microphone {self.name!r} stopped delivering sound ({exc}): it was unplugged or failed. "
                f"Plug it in again; the kiosk takes it back within seconds")
            log.error("%s", self.error)
            try:
                track._loop.call_soon_threadsafe(track.stop)  # the call sees the track end
            except RuntimeError:
                pass  # the loop closed at shutdown: nobody is left to tell
        finally:
            close_quietly(pcm)

    def set_gain_db(self, gain_db: int) -> None:
        """Takes effect with the next 20 ms of sound, also during a call."""
        self.gain = gain_factor(gain_db)

    def _stop_capture(self) -> None:
        if self._track is not None:
            self._track.stop()
        self._stop.set()
        for thread in (self._thread, self._worker):
            if thread is not None:
                thread.join(timeout=1)  # a read returns within one 20 ms period, a wait for frames in 0.1 s
        self._thread = self._worker = None
        self._track = None

    def close(self) -> None:
        self._stop_capture()

def _unread(pcm) -> int:
    try:
        return avail(pcm)
    except alsaaudio().ALSAAudioError:
        return 0  # the next read finds out what is wrong with the device
