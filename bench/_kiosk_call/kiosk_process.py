"""The parent's handle on a bench kiosk in a process of its own: commands in, events (tuples) out.

:class:`ChildProcess` is the pipe and the waiting; :class:`KioskProcess` is bench kiosk_call's kiosk
(``bench._kiosk_call.kiosk``, talking to central), and bench three_way's kiosk (``bench._three_way``) is
another :class:`ChildProcess`."""
from __future__ import annotations

import asyncio
import multiprocessing
from collections.abc import Callable

from bench._common import BenchError
from bench._kiosk_call.kiosk import kiosk_main
from bench._limits import RateLimited

KIOSK_START_TIMEOUT_S = 30.0


class ChildProcess:
    """``target(conn, *args)`` in a spawned process; what it sends over ``conn`` is kept as events.

    An ("error", …) or ("exited",) event ends every wait with a :class:`BenchError`."""

    def __init__(self, target: Callable, args: tuple, name: str) -> None:
        mp = multiprocessing.get_context("spawn")
        self.conn, child = mp.Pipe()
        # Not a daemon: a daemonic process may not start the stand-in encoder's process.
        self.proc = mp.Process(target=target, args=(child, *args), name=name)
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

    def check(self, event: tuple) -> None:
        """Raise if ``event`` says the process cannot go on."""
        if event[0] in ("error", "exited"):
            raise BenchError(f"kiosk: {event}; see its log above")

    async def wait(self, kind: str, since: int, timeout: float, who: str | None = None) -> tuple:
        """The first ``kind`` event (about ``who``, if given: its second field) after ``mark()`` was ``since``."""
        deadline = self._loop.time() + timeout
        while True:
            for event in self.events[since:]:
                if event[0] == kind and (who is None or event[1] == who):
                    return event
                self.check(event)
            remaining = deadline - self._loop.time()
            if remaining <= 0:
                raise TimeoutError(f"kiosk sent no {kind!r} within {timeout:g} s")
            self._new.clear()
            try:
                await asyncio.wait_for(self._new.wait(), remaining)
            except TimeoutError:
                pass

    async def start(self, timeout: float = KIOSK_START_TIMEOUT_S) -> None:
        """Until the process says ("ready", its pid, its stand-in encoder's pid)."""
        ready = await self.wait("ready", 0, timeout)
        self.pid, self.encoder_pid = ready[1], ready[2]

    def command(self, *cmd) -> None:
        self.conn.send(cmd)

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


class KioskProcess(ChildProcess):
    """Bench kiosk_call's kiosk: a scripted kiosk that talks to central (``bench._kiosk_call.kiosk``)."""

    def __init__(self, central_url: str, token: str) -> None:
        """``token``: the kiosk it connects as first; each visit request names its own (see ``kiosk.py``)."""
        super().__init__(kiosk_main, (central_url, token), "bench-kiosk")

    def check(self, event: tuple) -> None:
        if event[0] == "central_error" and event[1] == "rate_limited":
            raise RateLimited("the kiosk's message", event[2] or "")
        if event[0] == "central_error":
            raise BenchError(f"kiosk: {event}")
        super().check(event)

    async def stats(self) -> dict:
        mark = self.mark()
        self.command("stats")
        return (await self.wait("stats", mark, 5.0))[1]
