"""A real central process stopped (SIGTERM) and killed (SIGKILL) while citizens wait and one is
in a call: when it is back, everyone is in their place in their order, and the call can be hung up."""
from __future__ import annotations

import asyncio
import json
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from central.seed import seed_demo
from central.storage import Database

ROOT = Path(__file__).resolve().parents[2]
WAITING = 3
START_TIMEOUT_S = 30.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class CentralProcess:
    """``python -m central serve`` as systemd runs it, on a temporary database and port."""

    def __init__(self, tmp: Path):
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.database_url = f"sqlite:///{tmp}/central.db"
        self.config = tmp / "central.toml"
        self.config.write_text(f'database_url = "{self.database_url}"\nhost = "127.0.0.1"\nport = {self.port}\n'
                               "secure_cookies = false\nresume_grace_s = 60\n", encoding="utf-8")
        self.log = tmp / "central.log"
        self.proc: subprocess.Popen | None = None

    def _launch(self) -> None:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "central", "--config", str(self.config), "serve"],
                                         cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    async def start(self, session: aiohttp.ClientSession) -> None:
        await asyncio.to_thread(self._launch)
        async with asyncio.timeout(START_TIMEOUT_S):
            while True:
                assert self.proc.poll() is None, self.log.read_text()
                try:
                    async with session.get(self.url + "/login") as r:
                        if r.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)

    async def stop(self, sig: signal.Signals) -> int:
        self.proc.send_signal(sig)
        return await asyncio.to_thread(self.proc.wait, 20)


class Kiosk:
    """A kiosk that remembers what an appliance keeps in memory: its visit and latest token."""

    def __init__(self, central: CentralProcess, session: aiohttp.ClientSession, token: str):
        self.central, self.session, self.token = central, session, token
        self.ws = None
        self.visit_id = self.resume_token = None
        self.position = None
        self.seen: list[dict] = []

    async def connect(self) -> None:
        self.ws = await self.session.ws_connect(self.central.url.replace("http", "ws") + "/ws/kiosk",
                                                headers={"Authorization": f"Bearer {self.token}"})
        assert (await self.recv())["type"] == "welcome"

    async def send(self, **message) -> None:
        await self.ws.send_str(json.dumps(message))

    async def recv(self, type: str | None = None) -> dict:
        async with asyncio.timeout(5):
            while True:
                frame = await self.ws.receive()
                assert frame.type == aiohttp.WSMsgType.TEXT, frame
                message = json.loads(frame.data)
                self.seen.append(message)
                self.resume_token = message.get("resume_token", self.resume_token)
                self.position = message.get("position", self.position)
                if type is None or message["type"] == type:
                    return message

    async def until_position(self, place: int) -> None:
        while self.position != place:
            await self.recv("visit.position")

    async def closed(self) -> int | None:
        """Wait for central to close (or lose) the socket; no visit may end on the way."""
        async with asyncio.timeout(10):
            while (frame := await self.ws.receive()).type == aiohttp.WSMsgType.TEXT:
                assert json.loads(frame.data)["type"] != "visit.ended", frame.data
        return self.ws.close_code

    async def resume(self) -> dict:
        await self.connect()
        await self.send(type="visit.resume", visit_id=self.visit_id, resume_token=self.resume_token)
        return await self.recv("visit.resumed")


async def _clerk(central: CentralProcess, password: str) -> tuple[aiohttp.ClientSession, object, dict]:
    session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    async with session.get(central.url + "/login") as r:
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', await r.text()).group(1)
    async with session.post(central.url + "/login", allow_redirects=False,
                            data={"username": "sachbearbeiterin", "password": password, "csrf_token": csrf}) as r:
        assert r.status == 302
    ws = await session.ws_connect(central.url.replace("http", "ws") + "/ws/staff", headers={"Origin": central.url})
    snapshot = json.loads((await ws.receive(timeout=5)).data)
    assert snapshot["type"] == "console.snapshot"
    return session, ws, snapshot


async def _recv(ws, type: str) -> dict:
    async with asyncio.timeout(5):
        while True:
            message = json.loads((await ws.receive()).data)
            if message["type"] == type:
                return message


@pytest.fixture
def central_process(tmp_path):
    central = CentralProcess(tmp_path)
    yield central
    if central.proc is not None and central.proc.poll() is None:
        central.proc.kill()
        central.proc.wait(10)


async def test_waiting_places_and_a_running_call_survive_sigterm_and_sigkill(central_process):
    central = central_process
    db = await Database.open(central.database_url)
    try:
        credentials = await seed_demo(db)
        tokens = [(await db.create_kiosk(f"Ort {i}"))[1] for i in range(WAITING)]
    finally:
        await db.close()

    async with aiohttp.ClientSession() as session:
        await central.start(session)
        calling = Kiosk(central, session, credentials["kiosk_token"])
        waiting = [Kiosk(central, session, token) for token in tokens]
        for kiosk in [calling, *waiting]:
            await kiosk.connect()
            await kiosk.send(type="visit.request", department="buergerbuero")
            kiosk.visit_id = (await kiosk.recv("visit.queued"))["visit_id"]
        order = [k.visit_id for k in waiting]
        clerk_session, clerk, _ = await _clerk(central, credentials["clerk_password"])
        await clerk.send_str(json.dumps({"type": "visit.pickup", "visit_id": calling.visit_id}))
        await _recv(clerk, "call.assigned")
        await calling.recv("call.start")
        await calling.send(type="rtc.state", visit_id=calling.visit_id, state="connected")
        for place, kiosk in enumerate(waiting, start=1):
            await kiosk.until_position(place)  # one up: the call left the queue

        for sig in (signal.SIGTERM, signal.SIGKILL):
            stopped = asyncio.gather(*(k.closed() for k in [calling, *waiting]))
            returncode = await central.stop(sig)
            codes = await stopped
            await clerk_session.close()
            if sig is signal.SIGTERM:
                assert returncode == 0
                assert codes == [aiohttp.WSCloseCode.SERVICE_RESTART] * (WAITING + 1)  # at once, not by timeout
            await central.start(session)

            # The kiosks come back in reverse order: their places come from their tokens.
            for kiosk in reversed(waiting):
                assert (await kiosk.resume())["state"] == "waiting"
            assert (await calling.resume())["state"] == "in_call"
            for place, kiosk in enumerate(waiting, start=1):
                await kiosk.until_position(place)
            clerk_session, clerk, snapshot = await _clerk(central, credentials["clerk_password"])
            assert snapshot["presence"] == "in_call", sig
            queue = next(d for d in snapshot["departments"] if d["slug"] == "buergerbuero")
            assert [v["visit_id"] for v in queue["waiting"]] == order, sig
            assigned = await _recv(clerk, "call.assigned")
            assert assigned["visit"]["visit_id"] == calling.visit_id and assigned["resumed"] is True

        await clerk.send_str(json.dumps({"type": "visit.hangup", "visit_id": calling.visit_id}))
        assert (await calling.recv("visit.ended"))["reason"] == "hangup_staff"
        assert not [m for m in calling.seen if m["type"] == "call.start"][1:]  # never renegotiated
        for kiosk in waiting:
            assert not [m for m in kiosk.seen if m["type"] == "visit.ended"]
        await clerk_session.close()
        assert await central.stop(signal.SIGTERM) == 0
    log = central.log.read_text()
    assert "Traceback" not in log, log
