"""Central drops ICE candidates that name addresses outside its networks, both ways, through its sockets."""
from __future__ import annotations

import pytest_asyncio

from central.config import Config
from tests.central.conftest import running_central

METADATA = "candidate:1 1 udp 2122260223 169.254.169.254 80 typ host generation 0"
LAN = "candidate:2 1 udp 2122260223 10.1.2.3 54400 typ host generation 0"
LOOPBACK = "candidate:3 1 udp 2122260223 127.0.0.1 54400 typ host generation 0"
RELAY_VIA_TURN = "candidate:4 1 udp 41885439 127.0.0.1 49200 typ relay raddr 0.0.0.0 rport 0 generation 0"
MDNS = "candidate:5 1 udp 2122260223 4f0e1c6a-9b1d-4d8e-a2a5-2b6f3e1c9d0a.local 54400 typ host"


def sdp_with(*candidates: str) -> str:
    lines = ["v=0", "o=- 1 1 IN IP4 127.0.0.1", "s=-", "t=0 0", "m=audio 9 UDP/TLS/RTP/SAVPF 111",
             "c=IN IP4 169.254.169.254", "a=mid:0", *(f"a={c}" for c in candidates), "a=end-of-candidates"]
    return "\r\n".join(lines) + "\r\n"


@pytest_asyncio.fixture
async def city(tmp_path):
    """Central with the city's LAN 10/8 only and a TURN server named ``localhost`` (so 127.0.0.1 is the
    TURN server's address: allowed in relay candidates, not in host candidates)."""
    config = Config(database_url=f"sqlite:///{tmp_path}/central.db", secure_cookies=False,
                    ice_networks=("10.0.0.0/8",),
                    ice_servers=(Config.from_dict({"database_url": "sqlite://", "ice_servers": [
                        {"urls": ["turn:localhost:3478"], "username": "u", "credential": "c"}]}).ice_servers))
    async with running_central(config) as c:
        await c.app["hub"].relay.candidates.resolve_turn_hosts()  # the background lookup may not have run yet
        yield c


async def in_call(central):
    clerk = await central.clerk()
    kiosk = await central.kiosk()
    await kiosk.send(type="visit.request", department="buergerbuero")
    visit_id = (await kiosk.recv("visit.queued"))["visit_id"]
    await clerk.send(type="visit.pickup", visit_id=visit_id)
    await clerk.recv("call.assigned")
    await kiosk.recv("call.start")
    return kiosk, clerk, visit_id


def trickled(candidate: str) -> dict:
    return {"candidate": candidate, "sdpMid": "0", "sdpMLineIndex": 0}


async def test_a_kiosk_cannot_point_the_clerks_browser_at_the_metadata_service(city):
    kiosk, clerk, visit_id = await in_call(city)
    offer = sdp_with(METADATA, LAN, LOOPBACK, RELAY_VIA_TURN, MDNS)
    await kiosk.send(type="rtc.offer", visit_id=visit_id, sdp=offer)
    got = (await clerk.recv("rtc.offer"))["sdp"]
    assert got == sdp_with(LAN, RELAY_VIA_TURN).replace("c=IN IP4 169.254.169.254", "c=IN IP4 0.0.0.0")

    for candidate in (METADATA, LOOPBACK, MDNS, LAN, RELAY_VIA_TURN, ""):
        await kiosk.send(type="rtc.candidate", visit_id=visit_id, candidate=trickled(candidate))
    relayed = [m["candidate"]["candidate"] for m in await clerk.quiet(0.5) if m["type"] == "rtc.candidate"]
    assert relayed == [LAN, RELAY_VIA_TURN, ""]  # the end-of-candidates marker passes too
    assert await kiosk.quiet(0.1) == []  # the kiosk is not told: its other candidates may well work
    assert city.hub.relay.candidates.dropped == 3 + 3


async def test_a_clerk_cannot_point_the_kiosk_at_the_metadata_service(city):
    kiosk, clerk, visit_id = await in_call(city)
    await clerk.send(type="rtc.answer", visit_id=visit_id, sdp=sdp_with(METADATA, LAN))
    assert (await kiosk.recv("rtc.answer"))["sdp"] == sdp_with(LAN).replace("169.254.169.254", "0.0.0.0")
    await clerk.send(type="rtc.candidate", visit_id=visit_id, candidate=trickled(METADATA))
    await clerk.send(type="rtc.candidate", visit_id=visit_id, candidate=trickled(LAN))
    assert (await kiosk.recv("rtc.candidate"))["candidate"]["candidate"] == LAN
    assert await kiosk.quiet(0.3) == []


async def test_by_default_the_private_networks_pass_and_the_metadata_address_does_not(central):
    kiosk, clerk, visit_id = await in_call(central)
    await kiosk.send(type="rtc.candidate", visit_id=visit_id, candidate=trickled(METADATA))
    await kiosk.send(type="rtc.candidate", visit_id=visit_id, candidate=trickled(LOOPBACK))
    assert (await clerk.recv("rtc.candidate"))["candidate"]["candidate"] == LOOPBACK
    assert await clerk.quiet(0.3) == []
