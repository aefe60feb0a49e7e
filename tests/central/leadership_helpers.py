"""Helpers for tests of several centrals in one test process (test_leadership.py, test_lease_keeper.py):
a fresh shared database, waiting for /health/leader, and a central on an event loop of its own."""
from __future__ import annotations

import asyncio
import contextlib
import threading
import time

import aiohttp
from aiohttp import web

from central.app import create_app
from central.config import Config
from central.seed import seed_demo
from central.storage import Database

METRICS_TOKEN = "m" * 40


async def seeded_database(pg) -> tuple[str, dict]:  # noqa: ANN001 - tests.servers.PostgreSQL
    """A new PostgreSQL database with the demo's departments, clerk and kiosk; its URL and credentials."""
    database_url = await pg.create_database()
    db = await Database.open(database_url)
    try:
        return database_url, await seed_demo(db)
    finally:
        await db.close()


async def until_status(url: str, status: int, timeout: float = 10, path: str = "/health/leader") -> float:
    """Wait until /health/leader (or ``path``) answers ``status``; returns the seconds it took."""
    started = time.monotonic()
    async with aiohttp.ClientSession() as session, asyncio.timeout(timeout):
        while True:
            with contextlib.suppress(aiohttp.ClientError):
                async with session.get(url + path) as r:
                    if r.status == status:
                        return time.monotonic() - started
            await asyncio.sleep(0.05)


class CentralInThread:
    """A central whose event loop runs in a thread of its own, so a test can stall that loop alone (as a
    busy or hung machine would) while the test, the other central and Redis go on."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="central-in-thread", daemon=True)
        self.runner: web.AppRunner | None = None
        self.url = ""

    @property
    def app(self) -> web.Application:
        return self.runner.app

    async def start(self) -> None:
        self._thread.start()
        await self._on_its_loop(self._start())

    async def _start(self) -> None:
        self.runner = web.AppRunner(create_app(self.config), shutdown_timeout=1)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"

    def keep_busy(self, seconds: float) -> threading.Event:
        """Occupy the loop with work for ``seconds`` (it holds the interpreter, as Python code does, handing
        it to other threads only at the interpreter's switch interval); the event is set when it is over."""
        over = threading.Event()

        def work() -> None:
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                sum(range(1000))
            over.set()
        self.loop.call_soon_threadsafe(work)
        return over

    def hang(self, until: threading.Event, at_most: float) -> None:
        """Stop the loop from running anything until ``until`` is set (or ``at_most`` seconds passed)."""
        self.loop.call_soon_threadsafe(until.wait, at_most)

    async def _on_its_loop(self, coro):  # noqa: ANN001, ANN202
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self.loop))

    async def stop(self) -> None:
        if self.runner is not None:
            await self._on_its_loop(self.runner.cleanup())
        self.loop.call_soon_threadsafe(self.loop.stop)
        await asyncio.to_thread(self._thread.join, 10)
        self.loop.close()


@contextlib.asynccontextmanager
async def two_centrals(database_url: str, redis_url: str):
    """Two centrals sharing one database and one Redis, the first started first (so it leads)."""
    runners, urls = [], []
    try:
        for _ in range(2):
            app = create_app(Config(database_url=database_url, redis_url=redis_url, secure_cookies=False,
                                    metrics_token=METRICS_TOKEN))
            runner = web.AppRunner(app, shutdown_timeout=1)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            runners.append(runner)
            urls.append(f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}")
            if len(runners) == 1:
                await until_status(urls[0], 200)
        yield runners, urls
    finally:
        for runner in runners:
            await runner.cleanup()
