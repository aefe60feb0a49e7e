"""Letting an authenticated peer in: the checks that need the hub or its limits, then what serves it.

A socket's endpoint (central/live/sockets.py, home_socket.py) first checks what needs only the request and
PostgreSQL: the kiosk's token, the clerk's session, the Origin. That may run on any central. What is
left needs the leader's memory (is this kiosk connected already and alive? how many visits are open from
this address? how often did it connect lately?), so it runs here, on the leader, whether the socket is
its own or relayed from an edge (central/cluster/edge.py): one set of rules, one set of buckets. (The
public per-address connection limits are kept in Valkey with several centrals, so they hold across a
change of leader too: central/live/shared_limits.py.)

``identity`` is plain JSON (it crosses Valkey for a relayed socket). A refusal is an HTTP error, answered
to the handshake before the WebSocket opens, by the edge just the same.
"""
from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from aiohttp import web

from central.live.hub import GuestPeer, HomePeer, Hub, KioskPeer, StaffPeer
from central.live.limits import HOME_OPEN_PER_ADDRESS, retry_after_s
from central.live.link import Link
from central.storage.database import Kiosk, Staff
from protocol.guests import GUEST_TO_CENTRAL
from protocol.home import HOME_TO_CENTRAL
from protocol.messages import KIOSK_TO_CENTRAL, STAFF_TO_CENTRAL, Message

log = logging.getLogger(__name__)

# How long a kiosk's open connection has to answer a ping when the same kiosk connects again.
ALIVE_PROBE_S = 1.0


@dataclass
class Admitted:
    """What serves an admitted peer: the messages it may send, the hub's handlers, and its peer object."""

    direction: Mapping[str, type[Message]]
    on_message: Callable
    on_open: Callable
    on_close: Callable
    make_peer: Callable[[Link], object]


def kiosk_identity(kiosk: Kiosk) -> dict:
    return {"id": kiosk.id, "location": kiosk.location, "revoked": kiosk.revoked}


def staff_identity(staff: Staff, user_agent: str | None) -> dict:
    return {"id": staff.id, "username": staff.username, "display_name": staff.display_name, "role": staff.role,
            "active": staff.active, "departments": sorted(staff.departments), "user_agent": user_agent}


async def admit(app: web.Application, kind: str, identity: dict) -> Admitted:
    """Raises ``web.HTTPException`` to refuse (429 with Retry-After for a limit)."""
    admit_kind = KINDS.get(kind)
    if admit_kind is None:
        raise web.HTTPBadRequest(text=f"unknown kind of peer {kind!r}\n")
    return await admit_kind(app, identity)


async def _kiosk(app: web.Application, identity: dict) -> Admitted:
    hub: Hub = app["hub"]
    kiosk = Kiosk(**identity)
    # Counted only once the token is known good, so nobody can lock a kiosk out by its id alone.
    if wait := app["kiosk_connects"].take(kiosk.id):
        seconds = retry_after_s(wait)
        raise web.HTTPTooManyRequests(headers={"Retry-After": str(seconds)},
                                      text=f"this kiosk reconnects too often; wait {seconds} s between attempts\n")
    # This connection will replace an open one of the same kiosk. If that one still answers, two
    # units hold the token (a cloned SD card); a unit reconnecting after a network failure leaves
    # a dead connection behind, which does not answer, so one unit is not taken for two.
    if (old := hub.kiosks.get(kiosk.id)) is not None and await old.link.answers_ping(ALIVE_PROBE_S):
        log.warning("kiosk %d: its token is used by two connections at once (two units with one token?)",
                    kiosk.id)
        await app["db"].record_token_reuse(kiosk.id)
    # Sent right after welcome: what the kiosk offers (departments, languages) and how it sounds and looks.
    settings = await app["db"].kiosk_settings.effective(kiosk.id, kiosk.location, list(hub.departments))
    return Admitted(KIOSK_TO_CENTRAL, hub.kiosk_message, hub.kiosk_connected, hub.kiosk_disconnected,
                    lambda link: KioskPeer(kiosk, link, settings=settings))


async def _staff(app: web.Application, identity: dict) -> Admitted:
    hub: Hub = app["hub"]
    fields = dict(identity)
    user_agent = fields.pop("user_agent", None)
    staff = Staff(**{**fields, "departments": frozenset(fields["departments"])})
    return Admitted(STAFF_TO_CENTRAL, hub.staff_message, hub.staff_connected, hub.staff_disconnected,
                    lambda link: StaffPeer(staff, link, user_agent=user_agent))


async def _guest(app: web.Application, identity: dict) -> Admitted:
    hub: Hub = app["hub"]
    if wait := await app["guest_connects"].take(identity["address"]):
        seconds = retry_after_s(wait)
        raise web.HTTPTooManyRequests(headers={"Retry-After": str(seconds)},
                                      text=f"too many connections from this address; wait {seconds} s\n")
    return Admitted(GUEST_TO_CENTRAL, hub.guest_message, hub.guest_connected, hub.guest_disconnected, GuestPeer)


async def _home(app: web.Application, identity: dict) -> Admitted:
    hub: Hub = app["hub"]
    address = identity["address"]
    if sum(1 for p in hub.homes.values() if p.address == address) >= HOME_OPEN_PER_ADDRESS:
        raise web.HTTPTooManyRequests(headers={"Retry-After": "30"},
                                      text="too many visits open from this address; close one and try again\n")
    if wait := await app["home_connects"].take(address):
        seconds = retry_after_s(wait)
        raise web.HTTPTooManyRequests(headers={"Retry-After": str(seconds)},
                                      text=f"too many connections from this address; try again in {seconds} s\n")
    return Admitted(HOME_TO_CENTRAL, hub.home_message, hub.home_connected, hub.home_disconnected,
                    lambda link: HomePeer(link, address))


KINDS: dict[str, Callable[[web.Application, dict], Awaitable[Admitted]]] = {
    "kiosk": _kiosk, "staff": _staff, "guest": _guest, "home": _home}
