"""Helpers for tests of calls with guests: a call in progress, an invited guest, a guest let in."""
from __future__ import annotations

from dataclasses import dataclass

from tests.central.conftest import Central, Peer

SDP = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
CANDIDATE = {"candidate": "candidate:1 1 udp 2122260223 127.0.0.1 54400 typ host", "sdpMid": "0", "sdpMLineIndex": 0}


@dataclass
class Call:
    clerk: Peer
    kiosk: Peer
    visit_id: str


async def call_in_progress(central: Central, clerk: Peer | None = None, kiosk: Peer | None = None) -> Call:
    clerk = clerk or await central.clerk()
    kiosk = kiosk or await central.kiosk()
    await kiosk.send(type="visit.request", department="buergerbuero")
    visit_id = (await kiosk.recv("visit.queued"))["visit_id"]
    await clerk.send(type="visit.pickup", visit_id=visit_id)
    await clerk.recv("call.assigned")
    await kiosk.recv("call.start")
    return Call(clerk, kiosk, visit_id)


async def guest_socket(central: Central, origin: str | None = None) -> Peer:
    ws = await central.session.ws_connect(central.url.replace("http", "ws") + "/ws/guest",
                                          headers={"Origin": origin or central.url})
    return Peer(ws)


async def invite(call: Call, role: str = "interpreter", label: str = "Dolmetscherin") -> dict:
    """The clerk's guest.status for a new link."""
    await call.clerk.send(type="guest.invite", visit_id=call.visit_id, role=role, label=label)
    status = await call.clerk.recv("guest.status")
    assert status["state"] == "invited" and status["link"].startswith("/guest#"), status
    return status


def secret_of(status: dict) -> str:
    return status["link"].split("#", 1)[1]


async def hello(central: Central, status: dict) -> tuple[Peer, dict]:
    """A guest opens the link: (their socket, the first answer)."""
    guest = await guest_socket(central)
    await guest.send(type="guest.hello", link=secret_of(status))
    return guest, await guest.recv()


async def admitted_guest(central: Central, call: Call, role: str = "interpreter",
                         label: str = "Dolmetscherin") -> tuple[Peer, str]:
    """A guest who opened the link, checked their devices and was let in: (their socket, their peer id)."""
    status = await invite(call, role, label)
    guest, welcome = await hello(central, status)
    assert welcome["type"] == "guest.welcome", welcome
    guest.welcome = welcome  # type: ignore[attr-defined] - its rejoin key, for tests of a lost connection
    assert (await call.clerk.recv("guest.status"))["state"] == "joining"
    await guest.send(type="guest.ready", visit_id=call.visit_id)
    assert (await call.clerk.recv("guest.status"))["state"] == "waiting"
    await call.clerk.send(type="guest.admit", visit_id=call.visit_id, peer=status["peer"])
    await guest.recv("guest.admitted")
    assert (await call.clerk.recv("guest.status"))["state"] == "in_call"
    return guest, status["peer"]
