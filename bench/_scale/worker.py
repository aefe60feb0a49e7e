"""A load-generator process: its own event loop and clients, driven by the benchmark over a pipe.

The benchmark's parent only orchestrates; the sockets live in (at most) two worker processes, so the
load generator gets a core of its own when central needs the other. Commands are dicts with a ``cmd``;
each gets exactly one reply (a dict; ``{"error": text}`` when the command failed).
"""
from __future__ import annotations

import asyncio
import multiprocessing
import traceback
from collections.abc import Awaitable, Callable
from multiprocessing.connection import Connection

from bench._common import BenchError

Handler = Callable[[dict], Awaitable[dict | None]]   # None: stop after replying


class Worker:
    """The parent's handle on one worker process."""

    def __init__(self, name: str, target: Callable, *args):
        context = multiprocessing.get_context("spawn")   # no copy of the parent's loop or sockets
        self.name = name
        self._conn, child = context.Pipe()
        self.process = context.Process(target=target, args=(child, *args), name=name, daemon=True)
        self.process.start()
        child.close()

    @property
    def pid(self) -> int:
        return self.process.pid

    async def ask(self, timeout_s: float, **command) -> dict:
        """Send a command and wait (at most ``timeout_s``) for its reply, without blocking the caller's loop."""
        self._conn.send(command)
        ready = await asyncio.to_thread(self._conn.poll, timeout_s)
        if not ready:
            raise BenchError(f"the {self.name} process did not answer {command['cmd']!r} within {timeout_s:.0f} s")
        try:
            reply = self._conn.recv()
        except EOFError:
            raise BenchError(f"the {self.name} process ended (exit code {self.process.exitcode})") from None
        if "error" in reply:
            raise BenchError(f"the {self.name} process failed at {command['cmd']!r}: {reply['error']}")
        return reply

    def stop(self) -> None:
        if self.process.is_alive():
            try:
                self._conn.send({"cmd": "stop"})
            except (BrokenPipeError, OSError):
                pass
            self.process.join(15)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(5)
        self._conn.close()


async def serve(conn: Connection, handle: Handler) -> None:
    """Worker side: answer commands until ``stop`` (or the parent goes away)."""
    while True:
        try:
            command = await asyncio.to_thread(conn.recv)
        except EOFError:
            return
        if command["cmd"] == "stop":
            await handle(command)
            conn.send({"stopped": True})
            return
        try:
            reply = await handle(command)
        except Exception as exc:  # the parent names the worker and the command; the trace helps to fix it
            reply = {"error": f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=5)}"}
        conn.send(reply)
