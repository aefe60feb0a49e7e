"""Looks for a booking's QR code in the camera's picture while the citizen holds it up.

The camera runs in frames mode (on a Pi 4 the ISP scales to 640x360 at 15 fps for free) and its
track goes through the self view (appliance/kiosk/self_view.py), so the citizen sees what the
camera sees and can aim their paper or phone. One task pulls every frame at the camera's pace
(the page's picture must not stutter); another decodes the newest one in a worker thread, at most
``SCAN_FPS`` a second, so the event loop never waits on the decoder. Frames live only until the
next one; nothing is written anywhere, and only a code found leaves this module.

``start()`` and ``stop()`` run on the event loop; the results come through the callbacks, also on
the loop: ``on_code(code)`` once per scan (the scanner then stops itself), ``on_other()`` for a QR
code that is not a booking's, ``on_fault(reason)`` ("camera" | "decoder") when it cannot scan.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from appliance.booking.errors import QrDecoderMissing
from appliance.booking.qr_reader import QrReader

log = logging.getLogger(__name__)

# Frames a second decoded: a code held up is found within a fifth of a second, and a Pi 4 spends a
# few per cent of one core on it (bench/qr_decode.py: 0.6 ms of CPU a frame on the development host,
# 2 ms for a hard one; a Pi 4 is taken as 6x slower).
SCAN_FPS = 5.0


class QrScanner:
    def __init__(self, *, camera, self_view, on_code: Callable[[str], None], on_other: Callable[[], None],
                 on_fault: Callable[[str], None], reader: QrReader | None = None) -> None:
        self.camera, self.self_view, self.reader = camera, self_view, reader or QrReader()
        self._on_code, self._on_other, self._on_fault = on_code, on_other, on_fault
        self._track: MediaStreamTrack | None = None
        self._tasks: list[asyncio.Task] = []
        self._latest = None
        self._fresh = asyncio.Event()
        self.frames_read = 0  # for tests and diagnostics

    @property
    def running(self) -> bool:
        return self._track is not None

    def start(self) -> None:
        """Camera on, scanning; a fault is reported through ``on_fault`` (also from here)."""
        self.stop()
        if not self.reader.available():
            self._on_fault("decoder")
            return
        try:
            track = self.camera.track(encoded=False)
        except Exception as exc:  # noqa: BLE001 - any way a camera refuses to start: the keypad remains
            log.warning("camera did not start for the QR code: %s", type(exc).__name__)
            self._on_fault("camera")
            return
        self._track = self.self_view.attach(track, encoded=False) if self.self_view is not None else track
        self._latest, self._fresh = None, asyncio.Event()
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._pull(self._track), name="qr-frames"),
                       loop.create_task(self._decode(), name="qr-decode")]

    def stop(self) -> None:
        """Camera off (its light too); nothing of a frame is kept."""
        track, self._track = self._track, None
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        if track is not None:
            track.stop()
        self._latest = None

    async def _pull(self, track: MediaStreamTrack) -> None:
        try:
            while True:
                self._latest = await track.recv()
                self._fresh.set()
        except MediaStreamError:
            if self._track is track:
                log.warning("the camera stopped while scanning for a QR code")
                self.stop()
                self._on_fault("camera")

    async def _decode(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._fresh.wait()
            self._fresh.clear()
            frame, started = self._latest, loop.time()
            try:
                read = await asyncio.to_thread(self.reader.read, frame)
            except QrDecoderMissing:
                self.stop()
                self._on_fault("decoder")
                return
            except Exception:  # noqa: BLE001 - one unreadable frame must not end the scan
                log.exception("a frame could not be searched for a QR code")
                read = None
            del frame
            self.frames_read += 1
            if read is not None and read.codes:
                self.stop()
                self._on_code(read.codes[0])
                return
            if read is not None and read.other:
                self._on_other()
            await asyncio.sleep(max(0.0, started + 1 / SCAN_FPS - loop.time()))
