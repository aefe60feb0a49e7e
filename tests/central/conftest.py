"""A running central on loopback with demo data, and WebSocket clients for kiosks and clerks."""
from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import re
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web
from argon2 import PasswordHasher

from central import passwords
from central.app import create_app
from central.config import Config
from central.seed import seed_demo

RECV_TIMEOUT = 5.0


class Clock:
    """A settable clock for office-hours tests; real time unless set."""

    def __init__(self) -> None:
        self.fixed: dt.datetime | None = None

    def __call__(self) -> dt.datetime:
        return self.fixed or dt.datetime.now(dt.UTC)


@dataclass
class Peer:
    """A WebSocket client that keeps every frame it got, for assertions."""

    ws: aiohttp.ClientWebSocketResponse
    inbox: list[dict] = field(default_factory=list)

    async def send(self, **message) -> None:
        await self.ws.send_str(json.dumps(message))

    async def send_raw(self, frame: str | bytes) -> None:
        await (self.ws.send_bytes(frame) if isinstance(frame, bytes) else self.ws.send_str(frame))

    async def recv(self, type: str | None = None, timeout: float = RECV_TIMEOUT) -> dict:
        """The next frame (of ``type``, skipping others)."""
        async with asyncio.timeout(timeout):
            while True:
                frame = await self.ws.receive()
                if frame.type != aiohttp.WSMsgType.TEXT:
                    raise AssertionError(f"socket closed: {frame}")
                message = json.loads(frame.data)
                self.inbox.append(message)
                if type is None or message["type"] == type:
                    return message

    async def quiet(self, seconds: float = 0.2) -> list[dict]:
        """Frames that arrive within ``seconds`` (expected: none, usually)."""
        got = []
        try:
            async with asyncio.timeout(seconds):
                while True:
                    got.append(await self.recv())
        except TimeoutError:
            return got


@dataclass
class Central:
    url: str
    app: web.Application
    credentials: dict
    clock: Clock
    session: aiohttp.ClientSession
    sessions: list = field(default_factory=list)

    @property
    def db(self):
        return self.app["db"]

    @property
    def hub(self):
        return self.app["hub"]

    async def kiosk(self, token: str | None = None) -> Peer:
        ws = await self.session.ws_connect(self.url.replace("http", "ws") + "/ws/kiosk",
                                           headers={"Authorization": f"Bearer {token or self.credentials['kiosk_token']}"})
        peer = Peer(ws)
        assert (await peer.recv())["type"] == "welcome"
        peer.settings = (await peer.recv())["settings"]  # type: ignore[attr-defined] - always right after welcome
        return peer

    async def new_kiosk(self, location: str = "Bibliothek") -> Peer:
        _, token = await self.db.create_kiosk(location)
        return await self.kiosk(token)

    async def login(self, username: str, password: str) -> aiohttp.ClientSession:
        jar = aiohttp.CookieJar(unsafe=True)
        session = aiohttp.ClientSession(cookie_jar=jar)
        self.sessions.append(session)
        async with session.get(self.url + "/login") as r:
            csrf = re.search(r'name="csrf_token" value="([^"]+)"', await r.text()).group(1)
        async with session.post(self.url + "/login", data={"username": username, "password": password,
                                                            "csrf_token": csrf}, allow_redirects=False) as r:
            assert r.status == 302, await r.text()
        return session

    async def clerk(self, username: str = "sachbearbeiterin", password: str | None = None, *,
                    user_agent: str | None = None) -> Peer:
        session = await self.login(username, password or self.credentials["clerk_password"])
        headers = {"Origin": self.url} | ({"User-Agent": user_agent} if user_agent else {})
        ws = await session.ws_connect(self.url.replace("http", "ws") + "/ws/staff", headers=headers)
        peer = Peer(ws)
        peer.session = session  # type: ignore[attr-defined]
        assert (await peer.recv())["type"] == "console.snapshot"
        return peer

    async def new_clerk(self, username: str, departments: list[str]) -> Peer:
        await self.db.create_staff(username, username.title(), passwords.hash_password("correct horse 1"),
                                   "clerk", departments)
        return await self.clerk(username, "correct horse 1")


def update_config(tmp_path: Path, keyring: Path) -> Config:
    """A central on SQLite that accepts update bundles signed under ``keyring`` (tests/rauc_bundles.py)."""
    return Config(database_url=f"sqlite:///{tmp_path}/central.db", secure_cookies=False, update_keyring=str(keyring))


@contextlib.asynccontextmanager
async def running_central(config: Config, ssl_context: ssl.SSLContext | None = None,
                          host: str = "127.0.0.1") -> AsyncIterator[Central]:
    """Central on a free port of ``host`` (loopback) with the demo data, a test clock and a client session;
    behind TLS (https://) with ``ssl_context``."""
    clock = Clock()
    app = create_app(config, now=clock)
    runner = web.AppRunner(app, shutdown_timeout=1)
    await runner.setup()
    site = web.TCPSite(runner, host, 0, ssl_context=ssl_context)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    credentials = await seed_demo(app["db"])
    app["hub"].set_departments(await app["db"].departments())
    c = Central(f"{'https' if ssl_context else 'http'}://{host}:{port}", app, credentials, clock, aiohttp.ClientSession())
    try:
        yield c
    finally:
        for s in [c.session, *c.sessions]:
            await s.close()
        await runner.cleanup()


@pytest.fixture
def cheap_password_hashing(monkeypatch):
    """Argon2 at its defaults costs ~0.15 s per login; for tests that log in a few hundred times."""
    monkeypatch.setattr(passwords, "_hasher", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))


@pytest_asyncio.fixture
async def central(tmp_path):
    config = Config(database_url=f"sqlite:///{tmp_path}/central.db", secure_cookies=False, resume_grace_s=1.0)
    async with running_central(config) as c:
        yield c


@pytest.fixture(scope="session")
def postgresql_server():
    """A throwaway PostgreSQL server (tests/servers.py): started on first use, deleted at session end.

    Raises servers.ServerUnavailable when it cannot start. Tests request it from their body
    (request.getfixturevalue) so that becomes a test failure, never a skip.
    """
    from tests import servers

    with servers.postgresql() as server:
        yield server


@pytest.fixture(scope="session")
def redis_server():
    """A throwaway redis-server without persistence (tests/servers.py), for several centrals' shared
    state; requested from test bodies like postgresql_server, so a failure to start fails the test."""
    from tests import servers

    with servers.redis_server() as server:
        yield server


@pytest.fixture
def sentinel_group():
    """Valkey under Sentinel (tests/sentinel_servers.py): a master, a replica and three sentinels of this test's
    own, since the tests kill the master."""
    from tests import sentinel_servers

    with sentinel_servers.sentinel_group() as group:
        yield group


@pytest.fixture(scope="session")
def tls_certificates(tmp_path_factory):
    """A throwaway CA with a server certificate for 127.0.0.1 and a client certificate (tests/tls_servers.py)."""
    from tests.tls_servers import make_certificates

    return make_certificates(tmp_path_factory.mktemp("tls-certificates"))


@pytest.fixture
def tls_sentinel_group(tls_certificates):
    """sentinel_group with TLS only, client certificates demanded, on every node and sentinel."""
    from tests import sentinel_servers

    with sentinel_servers.sentinel_group(certificates=tls_certificates) as group:
        yield group


@pytest_asyncio.fixture
async def redis_client(request):
    """An asyncio client of redis_server, on an emptied database."""
    import redis.asyncio as aioredis

    client = aioredis.from_url(request.getfixturevalue("redis_server").url)
    await client.flushdb()
    yield client
    await client.aclose()
