"""Reading an ALSA capture device for a call: one thread reads, another cancels the echo and delivers.

Used twice: inside the appliance's own process (appliance/hardware/pi/alsa_microphone.py, without echo
cancellation or in tests) and in the microphone's process of its own (capture_process.py), where the
cancelling thread does not take turns with the call's other Python threads (process_microphone.py says why).
mic_backlog.py says why reading and cancelling are two threads.
"""
from __future__ import annotations

import ctypes
import logging
import threading
import time
from collections.abc import Callable

import numpy as np

from appliance.hardware.echo import EchoCanceller
from appliance.hardware.errors import AudioDeviceError
from appliance.hardware.pi.alsa_pcm import PERIOD, alsaaudio, avail, close_quietly, is_xrun
from appliance.hardware.pi.mic_backlog import Backlog
from appliance.hardware.resample import RATE

log = logging.getLogger(__name__)

Deliver = Callable[[int, np.ndarray], None]  # (index of the first sample, 20 ms of s16 samples)
Behind = Callable[[int], None]  # ms of sound the echo canceller skipped because it fell behind


def name_os_thread(name: str) -> None:
    """Give the calling thread ``name`` (at most 15 characters) where the kernel shows it: ``top -H``,
    /proc/PID/task/*/comm, the boot test's microphone-threads line. Python does not, before 3.14."""
    try:
        ctypes.CDLL(None).prctl(15, name.encode()[:15], 0, 0, 0)  # PR_SET_NAME
    except (OSError, AttributeError):
        pass  # a name is a convenience


class Capture:
    """Capture from an opened PCM until :meth:`stop`; every 20 ms frame goes to ``deliver`` after the
    canceller, a failed device to ``failed`` (once, with a message that says what to do), and each time
    the canceller fell behind and skipped sound, how much (ms) to ``behind`` (the unit's health counts it)."""

    def __init__(self, pcm, *, device: str, name: Callable[[], str], echo: EchoCanceller | None,
                 deliver: Deliver, failed: Callable[[AudioDeviceError], None], behind: Behind | None = None) -> None:
        self._pcm, self.device, self._name, self.echo = pcm, device, name, echo
        self._deliver_frame, self._failed, self._behind = deliver, failed, behind
        self.overruns = 0
        self._stop = threading.Event()
        self._backlog = backlog = Backlog(PERIOD)
        self._reader = threading.Thread(target=self._capture, args=(backlog,), name="alsa-capture", daemon=True)
        self._worker = threading.Thread(target=self._deliver, args=(backlog,), name="alsa-capture-echo", daemon=True)

    @property
    def skipped(self) -> int:
        """20 ms frames skipped because the cancelling thread fell behind the device (mic_backlog.py)."""
        return self._backlog.skipped

    def start(self) -> None:
        self._reader.start()
        self._worker.start()

    def request_stop(self) -> None:
        """Stop soon; never blocks (the call's event loop ends a track with this)."""
        self._stop.set()

    def stop(self) -> None:
        """Stop and wait for both threads (at most a second each)."""
        self._stop.set()
        for thread in (self._reader, self._worker):
            if thread.is_alive() and thread is not threading.current_thread():
                thread.join(timeout=1)  # a read returns within one 20 ms period, a wait for frames in 0.1 s

    def _deliver(self, backlog: Backlog) -> None:
        name_os_thread("mic-echo")
        produced = behind = 0
        while not self._stop.is_set():
            skipped = backlog.skipped
            items = backlog.take(0.1)
            if backlog.skipped > skipped and self.echo is not None:
                behind += 1
                ms = (backlog.skipped - skipped) * PERIOD * 1000 // RATE
                if str(behind).rstrip("0") == "1":  # the 1st, 10th, 100th ...
                    log.warning("the echo canceller fell %d ms behind the microphone and skipped that much of "
                                "its sound (skips in this call: %d): the unit's CPU is too busy for it, so the "
                                "clerk may hear an echo of their own voice and miss words. Lower the camera's "
                                "size or rate, or use a faster unit", ms, behind)
                self.echo.fell_behind()
                self._tell_behind(ms)
            for item in items:
                if isinstance(item, int):  # sound lost before the next frame: the canceller skips as much
                    if self.echo is not None and item:
                        self.echo.microphone_lost(item)
                    produced += item  # and the call's clock: the next frame comes that much later in time
                    continue
                samples = np.frombuffer(item, np.int16)
                if self.echo is not None:
                    samples = self.echo.process(samples)
                self._deliver_frame(produced, samples)
                produced += PERIOD

    def _tell_behind(self, ms: int) -> None:
        if self._behind is None:
            return
        try:
            self._behind(ms)
        except Exception:
            log.exception("telling the appliance that the echo canceller fell behind failed")  # the sound goes on

    def _capture(self, backlog: Backlog) -> None:
        name_os_thread("mic-read")
        module, pcm, stop = alsaaudio(), self._pcm, self._stop
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
            error = AudioDeviceError(
                f"the microphone {self._name()!r} stopped delivering sound ({exc}): it was unplugged or failed. "
                f"Plug it in again; the kiosk takes it back within seconds")
            log.error("%s", error)
            self._failed(error)
        finally:
            close_quietly(pcm)


def _unread(pcm) -> int:
    try:
        return avail(pcm)
    except alsaaudio().ALSAAudioError:
        return 0  # the next read finds out what is wrong with the device
