"""``/ws/enrol`` against a real central: codes, their expiry, what a waiting unit may send, caps, time-outs."""
from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import re

import aiohttp
import pytest
import pytest_asyncio

from central.config import Config
from central.fleet.enrol_socket import MAX_REFUSED, TRANSPORT_LIMIT
from central.fleet.enrolment import ALPHABET, Limits, new_code, normalise_code
from protocol import messages as m
from protocol.codec import MAX_FRAME_BYTES, decode
from tests.central.conftest import RECV_TIMEOUT, Peer, running_central

CODE_RE = re.compile(r"[2-9A-HJ-NP-Z]{4}-[2-9A-HJ-NP-Z]{4}")


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest_asyncio.fixture
async def clock(central) -> FakeClock:
    """The pending units' clock, moved by the test (the sweeper still looks every second)."""
    fake = FakeClock()
    central.app["enrolments"].clock = fake
    return fake


def enrol_url(central) -> str:
    return central.url.replace("http", "ws") + "/ws/enrol"


async def connect(central, session: aiohttp.ClientSession | None = None, **kwargs) -> Peer:
    async with asyncio.timeout(RECV_TIMEOUT):
        return Peer(await (session or central.session).ws_connect(enrol_url(central), **kwargs))


async def waiting_unit(central, serial: str = "10000000abcdef01", session: aiohttp.ClientSession | None = None,
                       **kwargs) -> tuple[Peer, dict]:
    """A unit that said hello, with the code central gave it."""
    unit = await connect(central, session, **kwargs)
    await unit.send(type="enrol.hello", serial=serial, model="Raspberry Pi 4 Model B Rev 1.5", version="0.3.0")
    offer = await unit.recv()
    decode(json.dumps(offer), m.CENTRAL_TO_ENROL)  # a valid enrol.code, as the unit's codec sees it
    assert offer["type"] == "enrol.code", offer
    return unit, offer


async def closing(peer: Peer, timeout: float = RECV_TIMEOUT) -> aiohttp.WSMessage:
    """The close frame that ends ``peer``'s connection (other frames are kept in its inbox)."""
    async with asyncio.timeout(timeout):
        while True:
            frame = await peer.ws.receive()
            if frame.type == aiohttp.WSMsgType.TEXT:
                peer.inbox.append(json.loads(frame.data))
                continue
            return frame


async def waiting(central, count: int) -> None:
    """Until ``count`` units wait (a closed connection is let go once its handler has ended)."""
    async with asyncio.timeout(RECV_TIMEOUT):
        while True:
            if len(central.app["enrolments"]) == count:
                return
            await asyncio.sleep(0.01)


async def refused_handshake(central, session: aiohttp.ClientSession | None = None,
                            **kwargs) -> aiohttp.WSServerHandshakeError:
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        async with asyncio.timeout(RECV_TIMEOUT):
            await (session or central.session).ws_connect(enrol_url(central), **kwargs)
    return refused.value


# -- codes ---------------------------------------------------------------------------------

def test_codes_are_eight_signs_without_look_alikes():
    codes = {new_code() for _ in range(2000)}
    assert len(codes) == 2000
    assert all(CODE_RE.fullmatch(code) for code in codes)
    assert not set("".join(codes)) & set("01OI")
    assert set("".join(codes)) - {"-"} == set(ALPHABET)


@pytest.mark.parametrize(("typed", "code"), [
    ("K7MP-4QX9", "K7MP-4QX9"), ("k7mp-4qx9", "K7MP-4QX9"), ("K7MP4QX9", "K7MP-4QX9"), (" k7mp 4qx9 ", "K7MP-4QX9"),
    ("k7 mp - 4q x9", "K7MP-4QX9"), ("K7MP–4QX9", "K7MP-4QX9"),
    ("K7MP-4QX", None), ("K7MP-4QX99", None), ("K7MP-4QX0", None), ("K7MP-4QXI", None), ("", None),
    ("K7MP-4QXÄ", None),
])
def test_what_an_admin_types_is_read_as_a_code(typed, code):
    assert normalise_code(typed) == code


# -- hello and codes ---------------------------------------------------------------------------

async def test_a_unit_that_says_hello_gets_a_code_and_the_claim_link(central):
    unit, offer = await waiting_unit(central)
    assert CODE_RE.fullmatch(offer["code"])
    assert offer["expires_in_s"] == 600
    assert offer["claim_url"] == f"{central.url}/admin/kiosks/enrol?code={offer['code']}"
    # Only the code's unit is known by it; a ping is answered while it waits.
    assert central.app["enrolments"].find(offer["code"]).serial == "10000000abcdef01"
    await unit.send(type="ping")
    assert (await unit.recv())["type"] == "pong"
    assert await unit.quiet() == []


async def test_the_claim_link_uses_central_public_address(tmp_path):
    config = Config(database_url=f"sqlite:///{tmp_path}/c.db", secure_cookies=False,
                    public_url="https://buergerbuero.musterdorf.de")
    async with running_central(config) as central:
        _, offer = await waiting_unit(central)
    assert offer["claim_url"] == f"https://buergerbuero.musterdorf.de/admin/kiosks/enrol?code={offer['code']}"


async def test_two_units_get_different_codes(central):
    (_, first), (_, second) = await waiting_unit(central, "serial-one"), await waiting_unit(central, "serial-two")
    assert first["code"] != second["code"]


async def test_an_expired_code_is_replaced_on_the_same_connection(central, clock):
    unit, offer = await waiting_unit(central)
    enrolments = central.app["enrolments"]
    clock.now += 599
    assert enrolments.find(offer["code"]) is not None
    clock.now += 1
    assert enrolments.find(offer["code"]) is None  # expired at once, even before the unit hears of it
    fresh = await unit.recv("enrol.code")
    assert fresh["code"] != offer["code"] and fresh["expires_in_s"] == 600
    assert enrolments.find(fresh["code"]).serial == "10000000abcdef01"
    assert enrolments.find(offer["code"]) is None
    assert len(enrolments) == 1


async def test_a_unit_nobody_claims_is_sent_away_after_30_minutes(central, clock):
    unit, offer = await waiting_unit(central)
    for _ in range(2):  # two fresh codes on the way
        clock.now += 600
        await unit.recv("enrol.code")
    clock.now += 600
    frame = await closing(unit)
    assert frame.type == aiohttp.WSMsgType.CLOSE and frame.data == 1000
    assert "not claimed within 30 minutes" in frame.extra
    assert [message["type"] for message in unit.inbox] == ["enrol.code"] * 3
    await waiting(central, 0)


async def test_a_connection_that_never_says_hello_is_closed(central, clock):
    unit = await connect(central)
    await unit.send(type="ping")  # pings do not keep a unit without a hello waiting
    assert (await unit.recv())["type"] == "pong"
    clock.now += 10
    frame = await closing(unit)
    assert frame.data == 1008 and "enrol.hello within 10 s" in frame.extra
    await waiting(central, 0)


async def test_a_unit_that_leaves_frees_its_place_and_its_code(central):
    unit, offer = await waiting_unit(central)
    await unit.ws.close()
    await waiting(central, 0)
    assert central.app["enrolments"].find(offer["code"]) is None


# -- a waiting unit can do nothing but wait -------------------------------------------------------

@pytest.mark.parametrize(("frame", "code"), [
    ({"type": "visit.request", "department": "buergerbuero"}, "unknown_type"),
    ({"type": "kiosk.health", "version": "1", "uptime_s": 1, "boot_reason": "unknown", "devices": {}}, "unknown_type"),
    ({"type": "enrol.code", "code": "K7MP-4QX9", "expires_in_s": 600, "claim_url": "http://x"}, "unknown_type"),
    ({"type": "enrol.done", "token": "1." + "a" * 43, "location": "x"}, "unknown_type"),
    ({"type": "enrol.hello", "serial": "no spaces allowed", "model": "Pi", "version": "1"}, "invalid_field"),
    ({"type": "enrol.hello", "serial": "abcd1234", "model": "Pi", "version": "1", "token": "x"}, "invalid_field"),
    ({"type": "enrol.hello", "serial": "abcd1234", "model": "P" * 121, "version": "1"}, "invalid_field"),
    ({"type": "enrol.hello", "serial": "abcd1234"}, "invalid_field"),
    ({"type": "enrol.hello", "serial": "abc", "model": "Pi", "version": "1"}, "invalid_field"),
    ({"type": "enrol.hello", "serial": "abcd1234", "model": "Pi", "version": "1", "v": 2}, "unsupported_version"),
    ("[]", "bad_json"), ("{", "bad_json"), (b"\xff\xfe", "bad_json"),
    ("x" * (MAX_FRAME_BYTES + 1), "too_large"),
])
@pytest.mark.parametrize("after_hello", [False, True], ids=["before-hello", "after-hello"])
async def test_anything_but_hello_and_ping_gets_a_typed_error(central, frame, code, after_hello):
    if after_hello:
        unit, offer = await waiting_unit(central)
    else:
        unit = await connect(central)
    await unit.send_raw(json.dumps(frame) if isinstance(frame, dict) else frame)
    reply = await unit.recv()
    assert reply["type"] == "error" and reply["code"] == code, reply
    decode(json.dumps(reply), m.CENTRAL_TO_ENROL)
    enrolments = central.app["enrolments"]
    if after_hello:  # still waiting with its code
        assert enrolments.find(offer["code"]) is not None
        assert await unit.quiet() == []
    else:  # still allowed to say hello
        await unit.send(type="enrol.hello", serial="abcd1234", model="Pi", version="1")
        assert (await unit.recv())["type"] == "enrol.code"


async def test_a_second_hello_is_refused_and_the_code_stays(central):
    unit, offer = await waiting_unit(central)
    await unit.send(type="enrol.hello", serial="another-serial", model="Pi", version="1")
    reply = await unit.recv()
    assert (reply["type"], reply["code"], reply["ref"]) == ("error", "wrong_state", "enrol.hello")
    assert central.app["enrolments"].find(offer["code"]).serial == "10000000abcdef01"


async def test_a_unit_that_keeps_sending_wrong_messages_is_closed(central):
    unit, offer = await waiting_unit(central)
    for _ in range(MAX_REFUSED):
        await unit.send(type="visit.request", department="buergerbuero")
    frame = await closing(unit)
    assert frame.data == 1008 and "refused messages" in frame.extra
    assert [r["code"] for r in unit.inbox[1:]] == ["unknown_type"] * MAX_REFUSED
    assert central.app["enrolments"].find(offer["code"]) is None


async def test_a_frame_beyond_the_transport_limit_closes_the_connection(central):
    unit, offer = await waiting_unit(central)
    sending = asyncio.create_task(unit.send_raw("x" * (2 * TRANSPORT_LIMIT)))
    frame = await closing(unit)
    with contextlib.suppress(ConnectionError):
        await sending
    assert frame.data == aiohttp.WSCloseCode.MESSAGE_TOO_BIG
    await waiting(central, 0)
    assert central.app["enrolments"].find(offer["code"]) is None


# -- caps ----------------------------------------------------------------------------------------

async def test_units_from_one_address_are_capped_and_told_why(central):
    units = [await waiting_unit(central, f"serial-{i}") for i in range(5)]
    refused = await refused_handshake(central)
    assert refused.status == 429
    assert int(refused.headers["Retry-After"]) > 0
    # The refusal says what to do (the WebSocket client hands over the status line only).
    async with central.session.get(central.url + "/ws/enrol") as r:
        assert r.status == 429 and r.headers["Retry-After"] == refused.headers["Retry-After"]
        assert "claim their codes in central's Kiosks page" in await r.text()
    await units[0][0].ws.close()  # one leaves: the next one is let in
    await waiting(central, 4)
    await waiting_unit(central, "serial-5")


@pytest_asyncio.fixture
async def central_behind_proxy(tmp_path):
    """Central behind a trusted reverse proxy on loopback, so a test can be many client addresses."""
    config = Config(database_url=f"sqlite:///{tmp_path}/c.db", secure_cookies=False,
                    trusted_proxies=(ipaddress.ip_network("127.0.0.1/32"),))
    async with running_central(config) as c:
        yield c


def from_address(i: int) -> dict:
    return {"headers": {"X-Forwarded-For": f"10.{i // 250}.{i % 250}.1"}}


async def test_a_flood_of_waiting_units_is_capped_and_nothing_else_is_disturbed(central_behind_proxy):
    central = central_behind_proxy
    limits = central.app["enrolments"].limits
    assert (limits.max_pending, limits.max_per_address) == (200, 5)
    kiosk, clerk = await central.kiosk(), await central.clerk()
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))  # a pool of 100 by default
    central.sessions.append(session)
    # 200 units from 40 addresses (5 each, the most one address may have): all of them wait.
    units = []
    for i in range(200):
        unit = await connect(central, session, **from_address(i // 5))
        await unit.send(type="enrol.hello", serial=f"flood-{i:04d}", model="Pi", version="1")
        units.append(unit)
    codes = {(await unit.recv("enrol.code"))["code"] for unit in units}
    assert len(codes) == 200
    # The 201st is refused whoever sends it, with a reason and when to come back.
    for address in (1001, 0):
        refused = await refused_handshake(central, session, **from_address(address))
        assert refused.status == 503 and int(refused.headers["Retry-After"]) >= 1
    async with session.get(central.url + "/ws/enrol", **from_address(1002)) as r:
        assert r.status == 503
        assert "central has 200 units waiting for enrolment already; try again in a minute" in await r.text()
    # A sixth unit from one address is refused for that address once there is room overall.
    await units[-1].ws.close()
    await waiting(central, 199)
    assert (await refused_handshake(central, session, **from_address(0))).status == 429
    await waiting_unit(central, "latecomer", session, **from_address(1000))
    # Kiosks and consoles go on as if nothing happened.
    await kiosk.send(type="visit.request", department="buergerbuero")
    assert (await kiosk.recv("visit.queued"))["position"] == 1
    assert (await clerk.recv("queue.joined"))["visit"]["department"] == "buergerbuero"
    await kiosk.send(type="ping")
    assert (await kiosk.recv("pong"))["type"] == "pong"
    # And the waiting units still wait with their codes.
    await units[0].send(type="ping")
    assert (await units[0].recv())["type"] == "pong"
    for unit in units[:-1]:
        await unit.ws.close()


async def test_shutdown_closes_waiting_units_at_once(central):
    from central.app import begin_shutdown

    unit, _ = await waiting_unit(central)
    await begin_shutdown(central.app)
    frame = await closing(unit)
    assert frame.data == aiohttp.WSCloseCode.SERVICE_RESTART


def test_default_limits_are_the_documented_ones():
    assert Limits() == Limits(code_ttl_s=600, pending_timeout_s=1800, hello_timeout_s=10, max_pending=200,
                              max_per_address=5, sweep_every_s=1.0)
