"""How many of a generator's sockets central has closed, and a bounded wait until all of them are.

At the end of a run each generator closes its sockets and waits for central's closing handshake, so that
central counts clean ends rather than aborted ones; a socket central never answers is aborted after the wait.
"""
from __future__ import annotations

import asyncio


class Closings:
    def __init__(self) -> None:
        self.count = 0
        self._changed = asyncio.Event()

    def add(self) -> None:
        self.count += 1
        self._changed.set()

    async def until(self, total: int, seconds: float) -> bool:
        """True once ``total`` sockets are closed; False when ``seconds`` pass first."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while self.count < total:
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), max(0.0, deadline - loop.time()))
            except TimeoutError:
                return self.count >= total
        return True
