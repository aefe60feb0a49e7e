"""The parent's handle on the kiosk process (``bench._kiosk_call.kiosk``): commands in, timestamped events out."""
from __future__ import annotations

import asyncio
import multiprocessing

from bench._common import BenchError
from bench._kiosk_call.kiosk import kiosk_main
from bench._limits import RateLimited

KIOSK_START_TIMEOUT_S = 30.0


class KioskProcess:
    """The parent's handle on the kiosk process: commands in, timestamped events out."""

    def __init__(self, central_url: str, token: str) -> None:
        """``token``: the kiosk it connects as first; each visit request names its own (see ``kiosk.py``)."""
        mp = multiprocessing.get_context("spawn")
        self.conn, child = mp.Pipe()
        # Not a daemon: a daemonic process may not start the stand-in encoder's process.
        self.proc = mp.Process(target=kiosk_main, args=(child, central_url, token), name="bench-kiosk")
        self.proc.start()
        child.close()
        self.events: list[tuple] = []
        self._new = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self.conn.fileno(), self._readable)
        self.pid = self.encoder_pid = 0

    def _readable(self) -> None:
        try:
            while self.conn.poll():
                self.events.append(self.conn.recv())
        except (EOFError, OSError):
            self._loop.remove_reader(self.conn.fileno())
            self.events.append(("exited",))
        self._new.set()

    def mark(self) -> int:
        return len(self.events)

    async def wait(self, kind: str, since: int, timeout: float) -> tuple:
        deadline = self._loop.time() + timeout
        while True:
            for event in self.events[since:]:
                if event[0] == kind:
                    return event
                if event[0] == "central_error" and event[1] == "rate_limited":
                    raise RateLimited("the kiosk's message", event[2] or "")
                if event[0] in ("error", "exited", "central_error"):
                    raise BenchError(f"kiosk: {event}")
            remaining = deadline - self._loop.time()
            if remaining <= 0:
                raise TimeoutError(f"kiosk sent no {kind!r} within {timeout:g} s")
            self._new.clear()
            try:
                await asyncio.wait_for(self._new.wait(), remaining)
            except TimeoutError:
                pass

    async def start(self) -> None:
        ready = await self.wait("ready", 0, KIOSK_START_TIMEOUT_S)
        self.pid, self.encoder_pid = ready[1], ready[2]

    def command(self, *cmd) -> None:
        self.conn.send(cmd)

    async def stats(self) -> dict:
        mark = self.mark()
        self.command("stats")
        return (await self.wait("stats", mark, 5.0))[1]

    def stop(self) -> None:
        try:
            self.command("exit")
        except (BrokenPipeError, OSError):
            pass
        self.proc.join(timeout=15)
        if self.proc.is_alive():
            self.proc.terminate()
            self.proc.join(timeout=5)
        try:
            self._loop.remove_reader(self.conn.fileno())
        except (ValueError, OSError):
            pass
