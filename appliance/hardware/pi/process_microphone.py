"""The microphone with echo cancellation, captured and cancelled in a process of its own.

Inside the appliance's process the echo canceller's thread takes turns, under Python's interpreter lock,
with everything else a call runs in Python: aiortc's RTP and its pacing, the video, the controller. On
a busy unit it then got a third of real time and less (boot test runs 9-13, docs/benchmarks.md): the
microphone's sound reached the canceller with a hole every half second and the echo came through. In a
process of its own the capture and the canceller run whenever the kernel gives them a core, whatever
the call's Python threads do.

The appliance keeps the speaker: it sends the far end (what the speaker's device takes, in order), the
speaker's position and its silences to the process as they happen, and gets 20 ms frames back with the
echo removed (capture_wire.py). The process starts with the appliance (importing the canceller takes
a while on a slow card) and again at the next call if it ended; if it dies during a call, the call's
microphone track ends with a message saying so, as for an unplugged microphone.
"""
from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import select
import subprocess
import sys
import threading
import time
from collections.abc import Callable

import numpy as np
from aiortc.mediastreams import MediaStreamTrack

from appliance.hardware.echo import DEFAULT_DELAY_MS, mono_s16
from appliance.hardware.errors import AudioDeviceError
from appliance.hardware.gain import gain_factor, scale
from appliance.hardware.pi import alsa_cards
from appliance.hardware.pi import capture_wire as wire
from appliance.hardware.pi.alsa_microphone import CaptureTrack, CardDevice
from appliance.hardware.pi.alsa_pcm import alsaaudio

log = logging.getLogger(__name__)

PIPE_BYTES = 1 << 20  # 10 s of sound each way: a pipe never fills while both sides live
F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)
ORDER_TIMEOUT_S = 2.0  # an order that cannot be written in this time: the process is stuck
STOP_TIMEOUT_S = 3.0


class RemoteEcho:
    """The echo canceller as the speaker and the self-test see it; everything goes to the process.

    The speaker's thread calls these without ever blocking: should the process fall 10 s behind (or
    be gone), a message is lost, and the process is told to pair far end and microphone afresh."""

    def __init__(self, microphone: ProcessMicrophone, delay_ms: int) -> None:
        self._microphone = microphone
        self.delay_ms = delay_ms  # the echo path's delay the process's canceller starts from
        self._bypassed = False
        self._lost = False

    def far_end(self, frame) -> None:
        samples = mono_s16(frame)
        for start in range(0, samples.size, wire.MAX_FAR_SAMPLES):
            self._send(wire.FAR_END, samples[start:start + wire.MAX_FAR_SAMPLES].tobytes())

    def speaker_position(self, played: int, *, restart: bool = False) -> None:
        self._send(wire.POSITION, wire.POSITION_BODY.pack(played, restart))

    def speaker_silence(self, samples: int | None) -> None:
        self._send(wire.SILENCE, wire.COUNT.pack(-1 if samples is None else samples))

    @property
    def bypassed(self) -> bool:
        return self._bypassed

    @bypassed.setter
    def bypassed(self, value: bool) -> None:
        """The self-test's tone reaches the call untouched while True."""
        self._bypassed = bool(value)
        self._microphone.order(wire.BYPASS, wire.FLAG.pack(self._bypassed))

    def close(self) -> None:
        """Nothing of its own to free: the microphone ends the process."""

    def _send(self, tag: bytes, payload: bytes) -> None:
        if self._lost and self._microphone.send_lossy(wire.SILENCE, wire.COUNT.pack(-1)):
            self._lost = False  # what comes next is paired afresh
        if self._lost or not self._microphone.send_lossy(tag, payload):
            self._lost = True


class ProcessMicrophone(CardDevice):
    """An ALSA microphone whose capture and echo cancellation run in capture_process.py."""

    def __init__(self, device: str, *, delay_ms: int = DEFAULT_DELAY_MS, report_s: float = 0,
                 proc=alsa_cards.PROC_ASOUND, python: str = sys.executable) -> None:
        alsaaudio()  # fail at start-up, not at the first call, if ALSA is missing
        super().__init__(device, proc)
        self._command = [python, "-m", "appliance.hardware.pi.capture_process", "--device", device,
                         "--delay-ms", str(delay_ms), "--report-s", str(report_s)]
        self.gain = 1.0  # amplitude factor, from central's settings (set_gain_db)
        self.error: Exception | None = None
        # Called with the ms of sound skipped each time the process's canceller falls behind (a busy unit).
        self.on_echo_behind: Callable[[int], None] | None = None
        self.echo = RemoteEcho(self, delay_ms)
        self.starts = 0  # processes started (a second one means the first ended)
        self._write_lock = threading.Lock()
        self._process: subprocess.Popen | None = None
        self._orders = -1  # the process's stdin, not blocking
        self._reader: threading.Thread | None = None
        self._track: CaptureTrack | None = None
        self._number = 0  # the current track's; frames of an earlier track are dropped
        self._ready = threading.Event()
        self._start_process()

    def _start_process(self) -> None:
        started = time.monotonic()
        process = subprocess.Popen(self._command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, close_fds=True)
        for pipe in (process.stdin, process.stdout):
            with contextlib.suppress(OSError):  # a smaller pipe only means an earlier lost message
                fcntl.fcntl(pipe.fileno(), F_SETPIPE_SZ, PIPE_BYTES)
        os.set_blocking(process.stdin.fileno(), False)
        self._process, self._orders = process, process.stdin.fileno()
        self._ready = ready = threading.Event()
        self.starts += 1
        self._reader = threading.Thread(target=self._read, args=(process, ready, started),
                                        name="microphone-process", daemon=True)
        self._reader.start()
        if self.echo.bypassed:
            self.order(wire.BYPASS, wire.FLAG.pack(True))  # the new process starts with it off

    @property
    def pid(self) -> int | None:
        """The process's id while it runs (its CPU is the appliance's too)."""
        return self._process.pid if self.running else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def wait_ready(self, timeout: float) -> bool:
        """True once the process has loaded (tests; the appliance never waits for it)."""
        return self._ready.wait(timeout)

    def track(self) -> MediaStreamTrack:
        self._stop_track()
        if not self.running:
            if self._process is not None:
                log.warning("the microphone's process had ended (exit status %s); starting it again",
                            self._process.returncode)
                self._close_process()
            self._start_process()
        self.error = None
        self._number += 1
        number = self._number
        self._track = track = CaptureTrack(on_stop=lambda: self._stopped(number))
        self.order(wire.START, wire.TRACK.pack(number))
        return track

    def _stopped(self, number: int) -> None:
        if number == self._number and self.running:
            with contextlib.suppress(AudioDeviceError):  # a stuck process is found out at the next call
                self.order(wire.STOP)

    def _read(self, process: subprocess.Popen, ready: threading.Event, started: float) -> None:
        try:
            while (got := wire.read_message(process.stdout)) is not None:
                tag, payload = got
                if tag == wire.FRAME:
                    number, index = wire.FRAME_HEAD.unpack_from(payload)
                    self._frame(number, index, payload[wire.FRAME_HEAD.size:])
                elif tag == wire.FAILED:
                    (number,) = wire.TRACK.unpack_from(payload)
                    self._failed(number, AudioDeviceError(payload[wire.TRACK.size:].decode(errors="replace")))
                elif tag == wire.BEHIND:
                    self._behind(*wire.BEHIND_BODY.unpack(payload))
                elif tag == wire.READY:
                    ready.set()
                    log.info("the microphone's process is ready after %.1f s", time.monotonic() - started)
                else:
                    raise wire.WireError(f"unknown message {tag!r} from the microphone's process")
        except wire.WireError as exc:
            log.error("%s; ending the microphone's process", exc)
            process.kill()
        status = process.wait()
        if process is self._process:  # not closed on purpose
            self._failed(self._number, AudioDeviceError(
                f"the microphone's process ended (exit status {status}; its log says why): the call goes on "
                f"without the microphone's sound; the next call starts it again"))

    def _frame(self, number: int, index: int, data: bytes) -> None:
        track = self._track
        if track is None or number != self._number:
            return  # the end of an earlier call's capture
        track.push(index, scale(np.frombuffer(data, np.int16), self.gain).tobytes())

    def _behind(self, number: int, ms: int) -> None:
        listener = self.on_echo_behind
        if listener is None or number != self._number:
            return
        try:
            listener(ms)
        except Exception:
            log.exception("the echo canceller's falling behind could not be counted")  # frames must go on

    def _failed(self, number: int, error: AudioDeviceError) -> None:
        track = self._track
        if track is None or number != self._number or track.readyState != "live":
            return
        self.error = error
        log.error("%s", error)
        track.stop_from_thread()  # the call sees the track end

    def order(self, tag: bytes, payload: bytes = b"") -> None:
        """Write an order to the process, waiting for room (a second at most); AudioDeviceError if stuck."""
        data = wire.message(tag, payload)
        deadline = time.monotonic() + ORDER_TIMEOUT_S
        with self._write_lock:
            while data:
                try:
                    data = data[os.write(self._orders, data):]
                except BlockingIOError:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise AudioDeviceError("the microphone's process takes no orders (stuck for "
                                               f"{ORDER_TIMEOUT_S:.0f} s); it is started again at the next call") from None
                    select.select([], [self._orders], [], left)
                except OSError:
                    return  # the process is gone: its reader tells the call; the next track starts another

    def send_lossy(self, tag: bytes, payload: bytes) -> bool:
        """Write one small message at once or not at all (never blocks); False if it was lost."""
        data = wire.message(tag, payload)
        with self._write_lock:
            try:
                return os.write(self._orders, data) == len(data)
            except OSError:  # BlockingIOError: the pipe is full; others: the process is gone
                return False

    def set_gain_db(self, gain_db: int) -> None:
        """Takes effect with the next 20 ms of sound, also during a call."""
        self.gain = gain_factor(gain_db)

    def _stop_track(self) -> None:
        if self._track is not None:
            self._track.stop()
        self._track = None

    def _close_process(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        with self._write_lock:
            with contextlib.suppress(OSError):
                process.stdin.close()  # the process ends when its orders end
            self._orders = -1
        try:
            process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            log.warning("the microphone's process did not end in %.0f s; killing it", STOP_TIMEOUT_S)
            process.kill()
            process.wait()
        if self._reader is not None:
            self._reader.join(timeout=1)
        process.stdout.close()

    def close(self) -> None:
        self._stop_track()
        self._close_process()
