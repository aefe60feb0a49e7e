"""Two units with one kiosk token (a cloned SD card): central tells its admins, and cannot be made to spin."""
from __future__ import annotations

import asyncio

import aiohttp
import pytest

from central.live.limits import KIOSK_CONNECTS


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def keep_reading(peer) -> None:
    """A unit that is alive reads its socket (and so answers central's pings)."""
    try:
        while True:
            await peer.recv(timeout=30)
    except AssertionError:  # the socket closed
        pass


async def admin_kiosks_page(central) -> str:
    session = await central.login(central.credentials["admin_user"], central.credentials["admin_password"])
    async with session.get(central.url + "/admin/kiosks", headers={"Accept-Language": "en"}) as r:
        assert r.status == 200
        return await r.text()


async def test_a_token_used_by_two_live_units_is_recorded_and_shown_to_admins(central):
    clock = FakeClock()  # the units below reconnect no faster than central allows
    central.app["kiosk_connects"].clock = clock
    first = await central.kiosk()  # a unit, reading its socket as a live one does
    kiosk_id = next(iter(central.hub.kiosks))
    first_reads = asyncio.create_task(keep_reading(first))
    assert await central.db.token_reuse() == {}

    second = await central.kiosk()  # its clone, with the same token, while the first is connected
    await first_reads
    assert [(m["type"], m.get("code")) for m in first.inbox[2:]] == [("error", "replaced")]  # after welcome, settings
    assert (await central.db.token_reuse())[kiosk_id].times == 1
    text = await admin_kiosks_page(central)
    assert "This token is used by two units (seen 1 times" in text and "enrol the units again" in text

    # A unit that closed its connection before the next one came is no second unit.
    await second.ws.close()
    clock.now += 1
    third = await central.kiosk()
    assert (await central.db.token_reuse())[kiosk_id].times == 1
    # The clones keep taking the token from each other: each time is counted.
    third_reads = asyncio.create_task(keep_reading(third))
    clock.now += 1
    await central.kiosk()
    await third_reads
    assert (await central.db.token_reuse())[kiosk_id].times == 2

    # A new token for the kiosk: the warning is gone.
    session = central.sessions[-1]
    async with session.get(central.url + "/admin/kiosks") as r:
        csrf = (await r.text()).split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    async with session.post(central.url + f"/admin/kiosks/{kiosk_id}/token", data={"csrf_token": csrf}) as r:
        assert r.status == 200
    assert kiosk_id not in await central.db.token_reuse()
    assert "used by two units" not in await admin_kiosks_page(central)


async def test_one_unit_reconnecting_over_its_own_dead_connection_is_not_taken_for_two(central):
    """After a network failure the old connection is still open at central, but nothing answers on it."""
    await central.kiosk()  # from here on nothing reads this socket, as after the unit lost its network
    again = await central.kiosk()
    assert await central.db.token_reuse() == {}
    await again.send(type="ping")
    assert (await again.recv())["type"] == "pong"


async def test_a_kiosk_reconnecting_in_a_loop_gets_429_with_retry_after(central):
    clock = FakeClock()
    central.app["kiosk_connects"].clock = clock
    url = central.url.replace("http", "ws") + "/ws/kiosk"
    headers = {"Authorization": f"Bearer {central.credentials['kiosk_token']}"}
    accepted = 0
    for _ in range(50):  # two clones reconnecting at once, with no back-off, as the old appliance did
        try:
            ws = await central.session.ws_connect(url, headers=headers)
        except aiohttp.WSServerHandshakeError as exc:
            assert exc.status == 429 and exc.headers["Retry-After"] == "1"
            continue
        accepted += 1
        await ws.close()
    assert accepted == KIOSK_CONNECTS.capacity == 3
    # Another kiosk is not held up, and the looping one gets in again after the hinted second.
    await central.new_kiosk("Bibliothek")
    clock.now += 1
    await central.kiosk()
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await central.kiosk()
    assert refused.value.status == 429


async def test_a_wrong_token_does_not_use_up_a_kiosks_reconnects(central):
    central.app["kiosk_connects"].clock = FakeClock()
    kiosk_id = central.credentials["kiosk_token"].split(".", 1)[0]
    url = central.url.replace("http", "ws") + "/ws/kiosk"
    for _ in range(10):
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await central.session.ws_connect(url, headers={"Authorization": f"Bearer {kiosk_id}.wrong"})
        assert refused.value.status == 401
    await central.kiosk()
