"""Enrolment by code, the unit's side, against a central played by the test (/ws/enrol and /ws/kiosk)."""
from __future__ import annotations

import asyncio
import itertools
import json
import os
import re
import stat
import urllib.parse
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import segno
from aiohttp import web

from appliance.call.backoff import Backoff
from appliance.config import ApplianceConfig
from appliance.controller.view import EnrolScreen, Screen
from appliance.fleet.enrol import Enrolment, qr_svg, store_token
from appliance.hardware.fake.unit import FakeUnit
from appliance.service.main import start

TOKEN = "7." + "Ab3_" * 10
CLAIM = "https://central.musterdorf.test/admin/kiosks/enrol?code={code}"


def _offer(code: str, expires_in_s: int = 600) -> dict:
    return {"type": "enrol.code", "code": code, "expires_in_s": expires_in_s, "claim_url": CLAIM.format(code=code)}


@dataclass
class Pending:
    """One unit's connection to /ws/enrol as the fake central sees it."""
    ws: web.WebSocketResponse
    received: list[dict] = field(default_factory=list)
    hello: asyncio.Event = field(default_factory=asyncio.Event)

    async def send(self, **message) -> None:
        await self.ws.send_str(json.dumps({"v": 1, **message}))


class FakeEnrolCentral:
    """Only what the unit uses: /ws/enrol (the test sends codes and the token) and /ws/kiosk (a welcome)."""

    def __init__(self) -> None:
        self.busy_answers: list[web.Response] = []  # given, in turn, instead of accepting the next connections
        self.pending: list[Pending] = []
        self.kiosk_tokens: list[str] = []
        self._changed = asyncio.Condition()
        self.url = ""

    async def _enrol(self, request: web.Request) -> web.StreamResponse:
        if self.busy_answers:
            return self.busy_answers.pop(0)
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        conn = Pending(ws)
        async with self._changed:
            self.pending.append(conn)
            self._changed.notify_all()
        async for frame in ws:
            conn.received.append(json.loads(frame.data))
            conn.hello.set()
        return ws

    async def _kiosk(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async with self._changed:
            self.kiosk_tokens.append(request.headers.get("Authorization", "").removeprefix("Bearer "))
            self._changed.notify_all()
        await ws.send_str(json.dumps({"v": 1, "type": "welcome", "kiosk_location": "Bücherei", "ice_servers": [],
                                      "departments": [{"slug": "buergerbuero", "name": "Bürgerbüro", "open": True}]}))
        async for _ in ws:
            pass
        return ws

    async def connection(self, number: int, timeout: float = 15.0) -> Pending:
        """The ``number``-th enrolment connection (from 1), once its hello arrived."""
        async with asyncio.timeout(timeout):
            async with self._changed:
                await self._changed.wait_for(lambda: len(self.pending) >= number)
            await self.pending[number - 1].hello.wait()
        return self.pending[number - 1]

    async def kiosk_connected(self, timeout: float = 15.0) -> str:
        async with asyncio.timeout(timeout):
            async with self._changed:
                await self._changed.wait_for(lambda: self.kiosk_tokens)
        return self.kiosk_tokens[0]


@asynccontextmanager
async def fake_enrol_central():
    central = FakeEnrolCentral()
    app = web.Application()
    app.router.add_get("/ws/enrol", central._enrol)
    app.router.add_get("/ws/kiosk", central._kiosk)
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    central.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"
    try:
        yield central
    finally:
        await runner.cleanup()


class Screens:
    """What the enrolment asked the kiosk page to show, in order."""

    def __init__(self) -> None:
        self.shown: list[EnrolScreen] = []
        self._changed = asyncio.Event()

    def __call__(self, screen: EnrolScreen) -> None:
        self.shown.append(screen)
        self._changed.set()

    async def until(self, predicate, timeout: float = 15.0) -> EnrolScreen:
        async with asyncio.timeout(timeout):
            while not (self.shown and predicate(self.shown[-1])):
                self._changed.clear()
                await self._changed.wait()
        return self.shown[-1]


def _fast_backoff() -> Backoff:
    return Backoff(start_s=0.05, max_s=0.2)


# -- the QR code and the token file -------------------------------------------------------------

def _modules(svg: str) -> list[list[bool]]:
    """The dark modules of segno's SVG path (``M x y.5`` / ``m dx dy`` moves, ``h n`` runs), as a matrix."""
    size = int(re.search(r"""d=['"]M0 0h(\d+)v""", svg).group(1))
    line = re.search(r"<path[^>]*qrline[^>]*>", svg).group(0)
    path = re.search(r"""\sd=['"]([^'"]+)""", line).group(1)
    dark = [[False] * size for _ in range(size)]
    x = y = 0.0
    for op, a, b in re.findall(r"([Mmh])(-?[\d.]+)(?: (-?[\d.]+))?", path):
        if op == "M":
            x, y = float(a), float(b)
        elif op == "m":
            x, y = x + float(a), y + float(b)
        else:
            for i in range(int(a)):
                dark[int(y)][int(x) + i] = True
            x += int(a)
    return dark


def test_the_qr_code_is_segnos_code_of_the_claim_url():
    url = CLAIM.format(code="K7MP-4QX9")
    uri = qr_svg(url)
    assert uri.startswith("data:image/svg+xml")
    svg = urllib.parse.unquote(uri.split(",", 1)[1])
    assert "<script" not in svg and "K7MP" not in svg  # a picture only: no text, nothing that runs
    expected = segno.make(url, error="m", micro=False)
    border = 4
    matrix = [[bool(v) for v in row] for row in expected.matrix]
    shown = [row[border:-border] for row in _modules(svg)[border:-border]]
    assert shown == matrix
    other = segno.make(CLAIM.format(code="K7MP-4QX8"), error="m", micro=False)
    assert shown != [[bool(v) for v in row] for row in other.matrix]


def test_the_token_is_stored_whole_and_for_the_appliance_only(tmp_path):
    path = tmp_path / "data" / "kiosk-token"
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / ".kiosk-token.tmp").write_text("left over from a power cut")
    os.chmod(tmp_path / "data" / ".kiosk-token.tmp", 0o644)
    store_token(path, TOKEN)
    assert path.read_text() == TOKEN + "\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in path.parent.iterdir()) == ["kiosk-token"]
    config = ApplianceConfig.from_dict({"central_url": "https://s.example", "hardware": {"backend": "fake"},
                                        "data_dir": str(path.parent)})
    assert config.token == TOKEN  # what the next start reads


# -- the client ------------------------------------------------------------------------------------

async def test_hello_code_refresh_reconnect_and_token(tmp_path):
    screens = Screens()
    unit = FakeUnit("fake-00c0ffee", "Raspberry Pi 4 Model B Rev 1.5")
    async with fake_enrol_central() as central:
        enrolment = Enrolment(central.url, tmp_path / "kiosk-token", unit, "0.3.0+abc", show=screens,
                              backoff=_fast_backoff())
        task = asyncio.get_running_loop().create_task(enrolment.run())
        first = await central.connection(1)
        assert first.received[0] == {"v": 1, "type": "enrol.hello", "serial": "fake-00c0ffee",
                                     "model": "Raspberry Pi 4 Model B Rev 1.5", "version": "0.3.0+abc"}
        assert screens.shown[0] == EnrolScreen(serial="fake-00c0ffee")  # at once, before any code

        await first.send(**_offer("K7MP-4QX9"))
        shown = await screens.until(lambda s: s.code == "K7MP-4QX9")
        assert shown.claim_url == CLAIM.format(code="K7MP-4QX9") and shown.qr == qr_svg(shown.claim_url)
        assert shown.serial == "fake-00c0ffee" and shown.expires_in_s == 600

        await first.send(**_offer("ABCD-EFGH"))  # the code expired: central sends a fresh one
        await screens.until(lambda s: s.code == "ABCD-EFGH")
        await first.send(type="enrol.code", code="not a code", expires_in_s=600, claim_url="x")  # malformed
        await first.ws.close()  # connection lost: the old code must leave the screen
        gone = await screens.until(lambda s: s.code is None)
        assert gone.unreachable and gone.serial == "fake-00c0ffee"

        second = await central.connection(2)
        assert second.received[0]["type"] == "enrol.hello"
        await second.send(**_offer("HJKL-MNPQ"))
        await screens.until(lambda s: s.code == "HJKL-MNPQ")
        assert not (tmp_path / "kiosk-token").exists()
        await second.send(type="enrol.done", token=TOKEN, location="Bücherei Musterdorf")
        assert await asyncio.wait_for(task, 10) == TOKEN
    assert (tmp_path / "kiosk-token").read_text() == TOKEN + "\n"
    assert all(s.code != "not a code" for s in screens.shown)


async def test_a_fresh_appliance_shows_its_code_then_goes_idle_without_a_restart(tmp_path):
    async with fake_enrol_central() as central:
        config = ApplianceConfig(central_url=central.url, data_dir=tmp_path, kiosk_port=0,
                                 hardware={"backend": "fake", "unit": {"serial": "fake-00c0ffee"}})
        assert config.token is None
        unit = await start(config)
        try:
            pending = await central.connection(1)
            assert pending.received[0]["serial"] == "fake-00c0ffee"
            await pending.send(**_offer("K7MP-4QX9"))
            view = await _until(unit, lambda v: v.screen is Screen.ENROL and v.enrol.code)
            shown = unit.bridge.current_view()
            assert shown["screen"] == "enrol" and shown["enrol"]["code"] == "K7MP-4QX9"
            assert shown["enrol"]["serial"] == "fake-00c0ffee" and shown["enrol"]["qr"].startswith("data:image/svg")
            assert unit.hardware.button.mode == "off"  # the button does nothing yet
            unit.controller.post("press")  # ... really nothing
            await unit.controller.settle()
            assert unit.controller.view.screen is Screen.ENROL

            await pending.send(type="enrol.done", token=TOKEN, location="Bücherei")
            assert await central.kiosk_connected() == TOKEN
            view = await _until(unit, lambda v: v.screen is Screen.IDLE and v.online)
            assert view.location == "Bücherei" and view.enrol is None
            assert unit.hardware.button.mode == "idle"
            assert (tmp_path / "kiosk-token").read_text() == TOKEN + "\n"
        finally:
            await unit.close()


async def _until(unit, predicate, seconds: float = 15.0):
    async with asyncio.timeout(seconds):
        for _ in itertools.count():  # the controller publishes every change; polling its view is enough here
            if predicate(unit.controller.view):
                return unit.controller.view
            await asyncio.sleep(0.05)


async def test_a_busy_central_is_left_alone_as_long_as_it_asks(tmp_path):
    screens, waits = Screens(), []

    async def sleep(seconds: float) -> None:  # the waits are recorded, not waited
        waits.append(seconds)

    async with fake_enrol_central() as central:
        central.busy_answers = [web.Response(status=503, headers={"Retry-After": "42"}, text="full"),
                                web.Response(status=429, headers={"Retry-After": "86400"}, text="too many"),
                                web.Response(status=503, text="no hint")]
        enrolment = Enrolment(central.url, tmp_path / "kiosk-token", FakeUnit("fake-00c0ffee"), "0.1.0",
                              show=screens, backoff=_fast_backoff(), sleep=sleep)
        task = asyncio.get_running_loop().create_task(enrolment.run())
        try:
            await (await central.connection(1)).send(**_offer("K7MP-4QX9"))
            await screens.until(lambda s: s.code == "K7MP-4QX9")
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    assert waits[0] == 42 and waits[1] == 600  # as asked, but never more than 10 minutes
    assert waits[2] <= 0.2  # no hint: the ordinary back-off
