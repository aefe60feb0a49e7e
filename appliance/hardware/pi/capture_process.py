"""The microphone's process: ALSA capture and echo cancellation beside the appliance, not inside it.

Started by process_microphone.py (which says why) as::

    python -m appliance.hardware.pi.capture_process --device DEVICE [--delay-ms 120] [--report-s 5]

It reads orders and the far end from stdin and writes 20 ms frames, with the echo removed, to stdout
(capture_wire.py). It logs where the appliance logs (the journal), and ends when stdin ends: when the
appliance closes it, or dies.
"""
from __future__ import annotations

import argparse
import logging
import os
import select
import sys
import threading
import time
from typing import BinaryIO

import numpy as np

from appliance.hardware.echo import DEFAULT_DELAY_MS, EchoCanceller
from appliance.hardware.errors import AudioDeviceError
from appliance.hardware.native_exit import end_process
from appliance.hardware.pi import alsa_cards
from appliance.hardware.pi import capture_wire as wire
from appliance.hardware.pi.alsa_capture import Capture, name_os_thread
from appliance.hardware.pi.alsa_microphone import CardDevice
from appliance.hardware.pi.alsa_pcm import CAPTURE_PERIODS, open_pcm

log = logging.getLogger(__name__)

# Sound before pictures: on a busy unit the kernel gives this process's threads a core before the call's video
# (nice 0). A stalled picture is a frozen frame; a stalled canceller lets the echo through and loses words.
# The appliance's unit allows down to this (LimitNICE=-10 in amtsklingel-appliance.service).
NICE = -10


def raise_priority(nice: int = NICE) -> bool:
    """Ask for ``nice`` for this process's threads (call before starting any: threads take their creator's)."""
    try:
        os.setpriority(os.PRIO_PROCESS, 0, nice)
    except OSError as exc:
        log.warning("the microphone's process keeps the normal priority (%s): on a busy unit its echo canceller "
                    "may fall behind the call's video. The appliance's systemd unit should allow LimitNICE=%d",
                    exc.strerror, nice)
        return False
    log.info("the microphone's process runs at nice %d, before the call's video", nice)
    return True


class Writer:
    """Messages to the appliance; the cancelling thread and the order loop both write.

    A frame is written at once or dropped: should the appliance fall behind in taking them, the
    canceller must not wait for it (its timing is what keeps the echo's delay in place), and a frame
    the appliance takes late is of no use to the call anyway. Other messages wait for room."""

    def __init__(self, out: BinaryIO) -> None:
        self._out, self._lock = out, threading.Lock()
        os.set_blocking(out.fileno(), False)
        self.closed = False
        self.dropped = 0  # frames (and notes of the canceller falling behind) the appliance did not take in time

    def send(self, tag: bytes, payload: bytes = b"", *, droppable: bool = False) -> None:
        data = wire.message(tag, payload)
        fd = self._out.fileno()
        with self._lock:
            while data and not self.closed:
                try:
                    data = data[os.write(fd, data):]
                except BlockingIOError:
                    if droppable:  # a frame is at most PIPE_BUF bytes: all of it or nothing was written
                        self.dropped += 1
                        return
                    select.select([], [fd], [], 1.0)
                except OSError:
                    self.closed = True  # the appliance is gone: stdin ends next, and with it this process


class MicrophoneProcess:
    """Carries out the appliance's orders on one capture device and one echo canceller."""

    def __init__(self, device: str, echo: EchoCanceller, writer: Writer, *, open_pcm=open_pcm,
                 proc=alsa_cards.PROC_ASOUND) -> None:
        self.card = CardDevice(device, proc)
        self.echo, self.writer, self._open_pcm = echo, writer, open_pcm
        self._capture: Capture | None = None
        # Where the last window ended: CPU of the process, the cancelling thread and its CPU, the capture
        # and its skipped frames, frames dropped.
        self._window: tuple = (time.process_time(), None, 0.0, None, 0, 0)
        echo.window_note = self.window_note

    def window_note(self) -> str:
        """For the echo report, from the cancelling thread: what this process had of the CPU since the last
        window, and the frames it skipped because the canceller fell behind or the appliance did."""
        cpu0, thread0, thread_cpu0, capture0, skipped0, dropped0 = self._window
        capture, thread = self._capture, threading.get_ident()
        now = (time.process_time(), thread, time.thread_time(), capture,
               capture.skipped if capture is not None else 0, self.writer.dropped)
        self._window = now
        # A new call has a new capture and cancelling thread: their counts start from nothing.
        thread_cpu = now[2] - (thread_cpu0 if thread == thread0 else 0.0)
        skipped = now[4] - (skipped0 if capture is capture0 else 0)
        return (f"microphone's process CPU {now[0] - cpu0:.1f} s (cancelling thread {thread_cpu:.1f} s), "
                f"frames skipped behind {skipped}, not taken by the appliance {now[5] - dropped0}")

    def handle(self, tag: bytes, payload: bytes) -> None:
        if tag == wire.FAR_END:
            self.echo.far_end(np.frombuffer(payload, np.int16))
        elif tag == wire.POSITION:
            played, restart = wire.POSITION_BODY.unpack(payload)
            self.echo.speaker_position(played, restart=bool(restart))
        elif tag == wire.SILENCE:
            (samples,) = wire.COUNT.unpack(payload)
            self.echo.speaker_silence(None if samples < 0 else samples)
        elif tag == wire.BYPASS:
            (flag,) = wire.FLAG.unpack(payload)
            self.echo.bypassed = bool(flag)
        elif tag == wire.START:
            (track,) = wire.TRACK.unpack(payload)
            self.start(track)
        elif tag == wire.STOP:
            self.stop()
        else:
            raise wire.WireError(f"unknown order {tag!r} from the appliance")

    def start(self, track: int) -> None:
        self.stop()
        try:
            pcm = self._open_pcm("capture", self.card.device, CAPTURE_PERIODS)
        except AudioDeviceError as exc:
            log.error("%s", exc)
            self.writer.send(wire.FAILED, wire.TRACK.pack(track) + str(exc).encode())
            return
        head = wire.TRACK.pack(track)

        def deliver(index: int, samples: np.ndarray) -> None:
            self.writer.send(wire.FRAME, wire.FRAME_HEAD.pack(track, index) + samples.tobytes(), droppable=True)

        def failed(error: AudioDeviceError) -> None:
            self.writer.send(wire.FAILED, head + str(error).encode())

        def behind(ms: int) -> None:
            # From the cancelling thread, which must not wait: lost like a frame if the appliance takes nothing.
            self.writer.send(wire.BEHIND, wire.BEHIND_BODY.pack(track, ms), droppable=True)

        self._capture = Capture(pcm, device=self.card.device, name=lambda: self.card.name, echo=self.echo,
                                deliver=deliver, failed=failed, behind=behind)
        self._capture.start()

    def stop(self) -> None:
        if self._capture is not None:
            self._capture.stop()
            self._capture = None

    def run(self, orders: BinaryIO) -> None:
        """Until the appliance closes the pipe (or sends something that is not a message)."""
        try:
            while (got := wire.read_message(orders)) is not None:
                self.handle(*got)
        finally:
            self.stop()
            self.echo.close()


def canceller(delay_ms: int, report_s: float) -> EchoCanceller:
    if report_s:
        from appliance.hardware.echo_report import ReportingEchoCanceller
        return ReportingEchoCanceller(delay_ms=delay_ms, report_s=report_s)
    return EchoCanceller(delay_ms=delay_ms)


def main(argv: list[str] | None = None, *, make_canceller=canceller) -> int:
    """``make_canceller(delay_ms, report_s)`` is replaced only in tests (a canceller too slow for real time)."""
    parser = argparse.ArgumentParser(prog="python -m appliance.hardware.pi.capture_process",
                                     description="The kiosk microphone's capture and echo cancellation "
                                                 "(started by the appliance; orders on stdin, sound on stdout)")
    parser.add_argument("--device", required=True, help="ALSA capture device, e.g. plughw:CARD=kioskmic")
    parser.add_argument("--delay-ms", type=int, default=DEFAULT_DELAY_MS, help="the echo path's delay, a hint")
    parser.add_argument("--report-s", type=float, default=0, help="log the echo removed every so many seconds")
    args = parser.parse_args(argv)
    from appliance.service.systemd import setup_logging
    setup_logging()
    raise_priority()
    name_os_thread("mic-orders")
    # The sound goes out on the real stdout alone: anything a library prints goes to stderr (the journal).
    out = os.fdopen(os.dup(sys.stdout.fileno()), "wb", buffering=0)
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    writer = Writer(out)
    try:
        process = MicrophoneProcess(args.device, make_canceller(args.delay_ms, args.report_s), writer)
    except Exception as exc:  # noqa: BLE001 - whatever stops it, the appliance's log must say
        log.error("the microphone's process cannot start: %s", exc)
        return 1
    writer.send(wire.READY)
    try:
        process.run(sys.stdin.buffer)
    except wire.WireError as exc:
        log.error("the microphone's process stops: %s", exc)
        return 1
    return 0


if __name__ == "__main__":
    end_process(main())  # never through the interpreter's teardown: native_exit.py says why
