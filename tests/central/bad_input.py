"""What the bad-input tests share: a world to send bad input in, and a way to read one frame's whole answer.

The world is a real central over real sockets with two bystander visits: one kiosk waiting, one kiosk in a
call with a clerk console that serves every department, and the sender (a kiosk or a clerk) in the state a
case needs. ``exchange`` sends a frame and a ping and returns all that came before the pong.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
from dataclasses import dataclass

from protocol import messages as m
from protocol.codec import decode

SDP = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
CANDIDATE = {"candidate": "candidate:1 1 udp 2122260223 127.0.0.1 54400 typ host", "sdpMid": "0", "sdpMLineIndex": 0}
UNKNOWN_VISIT = "NoSuchVisit_0123456789abc"
SYNC_TIMEOUT = 5.0  # seconds for one frame's replies; central answers within milliseconds
# Monday 10:00 in Berlin: Bürgerbüro, Standesamt and Ordnungsamt are open, the Bürgermeister is not.
MONDAY_MORNING = dt.datetime(2026, 11, 23, 10, 0, tzinfo=dt.timezone(dt.timedelta(hours=1)))


async def exchange(peer, frame: str | bytes | dict | None = None, *, direction, pongs: int = 1) -> list[dict]:
    """Send ``frame`` (if any), then a ping; return every frame that arrives before that ping's pong.

    Central handles one socket's frames in order, so this is exactly the reply to ``frame`` plus
    anything queued for ``peer`` before. ``pongs=2`` when ``frame`` is itself a valid ping (its pong
    is returned). Bounded by SYNC_TIMEOUT; a closed socket fails the test (Peer.recv raises).
    Every frame central sends must itself be a valid message of ``direction``.
    """
    if frame is not None:
        await peer.send_raw(json.dumps(frame) if isinstance(frame, dict) else frame)
    await peer.send(type="ping")
    got: list[dict] = []
    try:
        async with asyncio.timeout(SYNC_TIMEOUT):
            while True:
                message = await peer.recv()
                decode(json.dumps(message), direction)
                if message["type"] == "pong":
                    pongs -= 1
                    if pongs == 0:
                        return got
                got.append(message)
    except TimeoutError:
        raise AssertionError(f"no pong within {SYNC_TIMEOUT} s; got {got}") from None


def hub_state(hub, *, told: bool = True) -> dict:
    """Everything the hub knows about visits and peers, comparable with ==.

    ``told=False`` leaves out the (position, wait) each kiosk was last told.
    """
    return {
        "visits": sorted((v.id, v.kiosk_id, v.kiosk_location, v.department, v.language, v.state.value, v.clerk_id,
                          v.resume_token, v.arrived_mono, tuple(v.messages), v.last_told if told else None)
                         for v in hub.rooms.all()),
        "queues": {slug: [v.id for v in hub.rooms.waiting(slug)] for slug in hub.departments},
        "kiosks": sorted(hub.kiosks),
        "staff": sorted((sid, peer.presence, peer.visit_id) for sid, peer in hub.staff.items()),
        "grace": sorted(hub._grace),
    }


def server_errors(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


async def request_visit(kiosk, department: str) -> dict:
    await kiosk.send(type="visit.request", department=department)
    return await kiosk.recv("visit.queued")


async def pick_up(clerk, kiosk, visit: dict) -> None:
    await clerk.send(type="visit.pickup", visit_id=visit["visit_id"])
    await clerk.recv("call.assigned")
    await kiosk.recv("call.start")


@dataclass
class World:
    central: object
    sender: object                 # the Peer that sends the bad frame
    direction: dict                # what central sends to the sender
    bystanders: dict               # name -> (Peer, direction)
    own: str | None = None         # the sender's visit
    own_token: str | None = None
    waiting: str = ""              # the waiting bystander's visit
    waiting_token: str = ""
    calling: str = ""              # the bystander visit in a call with the bystander console
    kiosk_id: int | None = None    # the sending kiosk and its credential
    kiosk_token: str | None = None

    async def quiet_everywhere(self) -> dict[str, list[dict]]:
        """What each bystander received since the last call (expected: nothing); each answers a ping."""
        return {name: await exchange(peer, direction=direction) for name, (peer, direction) in self.bystanders.items()}


async def build_world(central, socket: str, state: str) -> World:
    """Bystanders, then the sender (a kiosk or a clerk) in ``state``: idle, waiting or in_call."""
    central.clock.fixed = MONDAY_MORNING
    console = await central.clerk()  # Frau Demir serves every department: she would see any stray event
    calling_kiosk = await central.new_kiosk("Bystander im Gespräch")
    calling = await request_visit(calling_kiosk, "standesamt")
    await pick_up(console, calling_kiosk, calling)
    waiting_kiosk = await central.new_kiosk("Bystander wartet")
    waiting = await request_visit(waiting_kiosk, "standesamt")
    bystanders = {"waiting kiosk": (waiting_kiosk, m.CENTRAL_TO_KIOSK),
                  "kiosk in call": (calling_kiosk, m.CENTRAL_TO_KIOSK),
                  "console": (console, m.CENTRAL_TO_STAFF)}
    own = None
    if socket == "kiosk":
        kiosk_id, token = await central.db.create_kiosk("Absender")
        sender, direction = await central.kiosk(token), m.CENTRAL_TO_KIOSK
        if state in ("waiting", "in_call"):
            own = await request_visit(sender, "buergerbuero")
        if state == "in_call":
            partner = await central.new_clerk("partnerin", ["buergerbuero"])
            await pick_up(partner, sender, own)
            bystanders["call partner"] = (partner, m.CENTRAL_TO_STAFF)
    else:
        assert state in ("idle", "in_call")
        kiosk_id = token = None
        sender = await central.new_clerk("absender", ["buergerbuero", "standesamt"])
        direction = m.CENTRAL_TO_STAFF
        if state == "in_call":
            partner = await central.new_kiosk("Partner")
            own = await request_visit(partner, "buergerbuero")
            await pick_up(sender, partner, own)
            bystanders["call partner"] = (partner, m.CENTRAL_TO_KIOSK)
    world = World(central, sender, direction, bystanders, own=own and own["visit_id"],
                  own_token=own and own.get("resume_token"), waiting=waiting["visit_id"],
                  waiting_token=waiting["resume_token"], calling=calling["visit_id"], kiosk_id=kiosk_id,
                  kiosk_token=token)
    await exchange(sender, direction=direction)  # drain what setting up sent
    await world.quiet_everywhere()
    return world
