"""Real ``python -m central serve`` processes and lightweight clients that talk to them as kiosks and
consoles do (tests/central/test_restart_service.py, tests/central/test_failover.py, bench failover)."""
from __future__ import annotations

import asyncio
import contextlib
import json
import re
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from appliance.call.backoff import Backoff

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 30.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class CentralProcess:
    """``python -m central serve`` as systemd runs it, on a temporary database (SQLite unless
    ``database_url`` names another) and port; ``extra`` is appended to its settings file."""

    def __init__(self, tmp: Path, *, name: str = "central", database_url: str | None = None, extra: str = ""):
        self.name = name
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.database_url = database_url or f"sqlite:///{tmp}/{name}.db"
        self.config = tmp / f"{name}.toml"
        self.config.write_text(f'database_url = "{self.database_url}"\nhost = "127.0.0.1"\nport = {self.port}\n'
                               f"secure_cookies = false\nresume_grace_s = 60\n{extra}", encoding="utf-8")
        self.log = tmp / f"{name}.log"
        self.proc: subprocess.Popen | None = None

    def _launch(self) -> None:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "central", "--config", str(self.config), "serve"],
                                         cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    async def start(self, session: aiohttp.ClientSession, ready_path: str = "/login",
                    ready_status: tuple[int, ...] = (200,)) -> None:
        """Start and wait until ``ready_path`` answers one of ``ready_status``."""
        await asyncio.to_thread(self._launch)
        async with asyncio.timeout(START_TIMEOUT_S):
            while True:
                assert self.proc.poll() is None, self.log.read_text()
                with contextlib.suppress(aiohttp.ClientError):
                    async with session.get(self.url + ready_path) as r:
                        if r.status in ready_status:
                            return
                await asyncio.sleep(0.1)

    async def stop(self, sig: signal.Signals) -> int:
        self.proc.send_signal(sig)
        return await asyncio.to_thread(self.proc.wait, 20)

    def kill_if_running(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


class JsonSocket:
    """A client's WebSocket of JSON messages (``ws``, opened by the subclass); ``heard`` sees every message read,
    for what a client keeps in memory."""

    ws: aiohttp.ClientWebSocketResponse | None = None

    async def send(self, **message) -> None:
        await self.ws.send_str(json.dumps(message))

    async def recv(self, type: str | None = None, timeout: float = 5) -> dict:
        """The next message (of ``type``, reading past others) within ``timeout`` seconds."""
        async with asyncio.timeout(timeout):
            while True:
                frame = await self.ws.receive()
                assert frame.type == aiohttp.WSMsgType.TEXT, frame
                message = json.loads(frame.data)
                self.heard(message)
                if type is None or message["type"] == type:
                    return message

    def heard(self, message: dict) -> None:
        """Every message read (nothing kept here)."""


class Kiosk(JsonSocket):
    """A kiosk that remembers what an appliance keeps in memory: its visit and latest token.
    ``front`` is what it connects to: a central, or the load balancer before several (its ``url``)."""

    def __init__(self, front, session: aiohttp.ClientSession, token: str):
        self.front, self.session, self.token = front, session, token
        self.ws = None
        self.visit_id = self.resume_token = None
        self.position = None
        self.seen: list[dict] = []

    async def connect(self) -> None:
        self.ws = await self.session.ws_connect(self.front.url.replace("http", "ws") + "/ws/kiosk",
                                                headers={"Authorization": f"Bearer {self.token}"})
        assert (await self.recv())["type"] == "welcome"

    def heard(self, message: dict) -> None:
        self.seen.append(message)
        self.resume_token = message.get("resume_token", self.resume_token)
        self.position = message.get("position", self.position)

    async def request(self, department: str) -> None:
        await self.send(type="visit.request", department=department)
        self.visit_id = (await self.recv("visit.queued"))["visit_id"]

    async def until_position(self, place: int) -> None:
        while self.position != place:
            await self.recv("visit.position")

    async def closed(self, timeout: float = 10) -> int | None:
        """Wait for central to close (or lose) the socket; no visit may end on the way. The code of central's
        closing frame (1012: reconnect), or, without one (the connection was lost), the socket's close code."""
        async with asyncio.timeout(timeout):
            while (frame := await self.ws.receive()).type == aiohttp.WSMsgType.TEXT:
                assert json.loads(frame.data)["type"] != "visit.ended", frame.data
        return frame.data if frame.type == aiohttp.WSMsgType.CLOSE else self.ws.close_code

    async def resume(self) -> dict:
        await self.connect()
        await self.send(type="visit.resume", visit_id=self.visit_id, resume_token=self.resume_token)
        return await self.recv("visit.resumed")

    async def resume_retrying(self, timeout: float) -> dict:
        """Reconnect and resume as the appliance does after its central went away, with the appliance's
        own back-off, until a central takes the connection (a standby closes it with 1013, the load
        balancer answers 503 while no central leads)."""
        backoff = Backoff()
        async with asyncio.timeout(timeout):
            while True:
                await asyncio.sleep(backoff.next_delay())  # the appliance waits after every close, too
                try:
                    return await self.resume()
                except (aiohttp.ClientError, AssertionError, TimeoutError):
                    if self.ws is not None:
                        await self.ws.close()


class Console(JsonSocket):
    """A clerk's console: logged in over HTTP (the session lives in the database), then its WebSocket."""

    def __init__(self, front, username: str, password: str):
        self.front, self.username, self.password = front, username, password
        self.session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        self.ws = None

    async def login(self) -> None:
        url = self.front.url
        async with self.session.get(url + "/login") as r:
            csrf = re.search(r'name="csrf_token" value="([^"]+)"', await r.text()).group(1)
        async with self.session.post(url + "/login", allow_redirects=False, data={
                "username": self.username, "password": self.password, "csrf_token": csrf}) as r:
            assert r.status == 302

    async def connect(self) -> dict:
        """Open the console's socket; returns its snapshot."""
        self.ws = await self.session.ws_connect(self.front.url.replace("http", "ws") + "/ws/staff",
                                                headers={"Origin": self.front.url})
        frame = await self.ws.receive(timeout=5)
        assert frame.type == aiohttp.WSMsgType.TEXT, frame
        snapshot = json.loads(frame.data)
        assert snapshot["type"] == "console.snapshot"
        return snapshot

    async def close(self) -> None:
        await self.session.close()


def waiting_ids(snapshot: dict, department: str) -> list[str]:
    """The visit ids a console's snapshot lists as waiting in ``department``, in order."""
    return [v["visit_id"] for v in next(d for d in snapshot["departments"] if d["slug"] == department)["waiting"]]


@dataclass
class Scene:
    """The citizens and the clerk, as they stand before central is stopped or fails over."""

    calling: Kiosk
    waiting: list[Kiosk]
    clerk: Console
    order: list[str]


async def one_in_a_call_and_others_waiting(central, session: aiohttp.ClientSession, credentials: dict,  # noqa: ANN001
                                           tokens: list[str], department: str) -> Scene:
    """The demo kiosk's citizen in a call with the demo clerk, and one citizen per token waiting in
    ``department`` in a known order. ``central``: anything with the ``url`` the clients connect to."""
    calling = Kiosk(central, session, credentials["kiosk_token"])
    waiting = [Kiosk(central, session, token) for token in tokens]
    for kiosk in [calling, *waiting]:
        await kiosk.connect()
        await kiosk.request(department)
    clerk = Console(central, "sachbearbeiterin", credentials["clerk_password"])
    await clerk.login()
    await clerk.connect()
    await clerk.send(type="visit.pickup", visit_id=calling.visit_id)
    await clerk.recv("call.assigned")
    await calling.recv("call.start")
    await calling.send(type="rtc.state", visit_id=calling.visit_id, state="connected")
    for place, kiosk in enumerate(waiting, start=1):
        await kiosk.until_position(place)  # one up: the call left the queue
    return Scene(calling, waiting, clerk, [k.visit_id for k in waiting])
