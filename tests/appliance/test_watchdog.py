"""systemd's watchdog, fed by the running appliance (fake hardware) through a real notify socket:
a central that stops reading must not stop the pings; a wedged controller must."""
from __future__ import annotations

import asyncio
import os
import socket

import pytest

from appliance.config import ApplianceConfig
from appliance.service.main import start
from tests.appliance.fake_central import fake_central
from tests.polling import view_until

TOKEN = "kiosk-1." + "k" * 30
WATCHDOG_USEC = 400_000  # the appliance pings every 0.2 s
VISIT = "v" * 24
RESUME = "r" * 24


class Notifications:
    """What the appliance tells systemd, read from the socket systemd would listen on, as it arrives."""

    def __init__(self, sock: socket.socket):
        self._sock = sock
        self.watchdog_pings = 0
        self._arrived = asyncio.Condition()
        asyncio.get_running_loop().add_reader(sock, self._read)

    def _read(self) -> None:
        try:
            datagram = self._sock.recv(4096)
        except BlockingIOError:
            return
        if b"WATCHDOG=1" in datagram:
            self.watchdog_pings += 1
            asyncio.get_running_loop().create_task(self._tell())

    async def _tell(self) -> None:
        async with self._arrived:
            self._arrived.notify_all()

    async def pings(self, count: int, timeout: float) -> None:
        """Wait for ``count`` further WATCHDOG=1; fail after ``timeout`` seconds."""
        goal = self.watchdog_pings + count
        try:
            async with asyncio.timeout(timeout):
                async with self._arrived:
                    await self._arrived.wait_for(lambda: self.watchdog_pings >= goal)
        except TimeoutError:
            raise AssertionError(f"{count - (goal - self.watchdog_pings)} of {count} watchdog pings "
                                 f"within {timeout} s") from None


@pytest.fixture
async def systemd_notify(tmp_path, monkeypatch):
    path = str(tmp_path / "notify")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(path)
        sock.setblocking(False)
        monkeypatch.setenv("NOTIFY_SOCKET", path)
        monkeypatch.setenv("WATCHDOG_USEC", str(WATCHDOG_USEC))
        monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
        yield Notifications(sock)
        asyncio.get_running_loop().remove_reader(sock)


async def online(unit) -> None:
    await view_until(unit, lambda v: v.online, 10)


class LargeOfferCall:
    """A call whose offer is as large as the protocol allows (many candidates, several codecs)."""

    def __init__(self, *args):
        pass

    async def offer(self) -> str:
        return "v=0\r\n" + "a" * 31_000

    async def close(self) -> None:
        pass


async def test_a_central_that_stops_reading_does_not_stop_the_watchdog(systemd_notify):
    async with fake_central(reading=False) as central:
        unit = await start(ApplianceConfig(central_url=central.url, token=TOKEN, hardware={"backend": "fake"}, kiosk_port=0))
        try:
            unit.session.send_timeout_s = 1.0
            unit.controller._new_call = LargeOfferCall
            await online(unit)
            await systemd_notify.pings(2, timeout=5)
            unit.controller.post("choose", "buergerbuero")
            unit.controller.post("confirm")
            stalled = await central.connection(1)
            await stalled.send(type="visit.queued", visit_id=VISIT, resume_token=RESUME, department="buergerbuero",
                               position=1, expected_wait_s=0)

            async def pick_ups() -> None:  # each answered with a large offer: more than the link's buffers take
                try:
                    for _ in range(150):
                        await stalled.send(type="call.start", visit_id=VISIT, ice_servers=[], resume_token=RESUME)
                        await asyncio.sleep(0.005)
                except (ConnectionError, RuntimeError):
                    pass  # the kiosk cut the stalled link
            asyncio.get_running_loop().create_task(pick_ups())
            await systemd_notify.pings(10, timeout=8)  # a controller hanging on the link would stop them
            await central.connection(2)  # the stalled link was cut and the kiosk connected again
        finally:
            async with asyncio.timeout(20):  # closing must not hang on the stalled link either
                await unit.close()


async def test_a_wedged_controller_stops_the_watchdog(systemd_notify):
    async with fake_central() as central:
        unit = await start(ApplianceConfig(central_url=central.url, token=TOKEN, hardware={"backend": "fake"}, kiosk_port=0))
        try:
            await online(unit)
            await systemd_notify.pings(2, timeout=5)
            wedged = asyncio.Event()

            async def never_returns(message):
                wedged.set()
                await asyncio.Event().wait()
            unit.controller._on_central = never_returns  # a handler that never comes back
            await (await central.connection(1)).send(type="pong")
            await wedged.wait()
            before = systemd_notify.watchdog_pings
            await asyncio.sleep(2.0)  # ten intervals; the event loop itself stays alive meanwhile
            assert systemd_notify.watchdog_pings - before <= 1  # at most one tick handled before the wedge
        finally:
            await unit.close()


class TickAtOnce:
    """A controller that handles every tick the moment it is posted."""

    def post(self, kind: str, value) -> None:
        value.set()


@pytest.mark.parametrize("steps", range(8))
async def test_the_watchdog_stops_when_cancelled_just_after_a_tick(steps):
    """The service's shutdown cancels the watchdog, maybe right after the controller handled a tick: it must
    stop, not outlive the controller and wait for ticks nobody handles."""
    from appliance.service.main import _watchdog
    task = asyncio.get_running_loop().create_task(_watchdog(TickAtOnce()))
    for _ in range(steps):
        await asyncio.sleep(0)
    task.cancel()
    done, _ = await asyncio.wait([task], timeout=2)
    assert done, f"the watchdog loop went on after its cancel (after {steps} steps)"
