"""Bad input gets a clear error, changes nothing and disturbs no other visit.

Every case runs against a real central over real sockets, with two bystander visits:
one kiosk waiting, one kiosk in a call with a clerk console that serves every department.
After the offending frame, the sender's socket must still answer a ping, no bystander
(nor the sender's own call partner) may receive anything, and the hub must be unchanged.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import datetime as dt
import json
import logging
from dataclasses import dataclass, field

import aiohttp
import pytest
import yarl
from argon2 import PasswordHasher
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from central import passwords
from central.live.limits import VISIT_REQUESTS, Buckets
from central.live.sockets import TRANSPORT_LIMIT
from central.seed import DEMO_DEPARTMENTS
from protocol import messages as m
from protocol.codec import MAX_FRAME_BYTES, decode
from protocol.errors import ProtocolError

SDP = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
CANDIDATE = {"candidate": "candidate:1 1 udp 2122260223 127.0.0.1 54400 typ host", "sdpMid": "0", "sdpMLineIndex": 0}
UNKNOWN_VISIT = "NoSuchVisit_0123456789abc"
SYNC_TIMEOUT = 5.0  # seconds for one frame's replies; central answers within milliseconds
# Monday 10:00 in Berlin: Bürgerbüro, Standesamt and Ordnungsamt are open, the Bürgermeister is not.
MONDAY_MORNING = dt.datetime(2026, 11, 23, 10, 0, tzinfo=dt.timezone(dt.timedelta(hours=1)))


@pytest.fixture(autouse=True)
def _cheap_password_hashing(monkeypatch):
    """Argon2 at its defaults costs ~0.15 s per login; these tests log in a few hundred times."""
    monkeypatch.setattr(passwords, "_hasher", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))


# == helpers ===================================================================

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


def _padded(size: int, pad: str = "x") -> str:
    """A ping padded to exactly ``size`` bytes of UTF-8."""
    head, tail = '{"type":"ping","pad":"', '"}'
    room = size - len(head) - len(tail)
    text = head + pad * (room // len(pad.encode())) + "x" * (room % len(pad.encode())) + tail
    assert len(text.encode()) == size
    return text


# == the world every case runs in ================================================

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


# == the matrix ================================================================

@dataclass(frozen=True)
class Case:
    socket: str                    # "kiosk" or "staff"
    state: str                     # the sender's state: idle, waiting, in_call
    name: str
    frame: object                  # str | bytes | dict | Callable[[World], str | bytes | dict]
    expect: tuple[str, str]        # ("error", code) or ("visit.refused", reason)

    @property
    def id(self) -> str:
        return f"{self.socket}-{self.name}"


# Malformed at the frame level: the same for both sockets.
GENERIC = [
    ("invalid_json", '{"type": "ping"', "bad_json"),
    ("json_array", '["ping"]', "bad_json"),
    ("json_string", '"ping"', "bad_json"),
    ("json_number", "42", "bad_json"),
    ("json_null", "null", "bad_json"),
    ("binary_garbage", b"\x80\xff\xfe\x00 garbage \xc3\x28", "bad_json"),
    ("binary_utf16_json", '{"type": "ping"}'.encode("utf-16"), "bad_json"),
    ("deeply_nested_json", "[" * 20_000 + "]" * 20_000, "bad_json"),
    ("unknown_type", {"type": "visit.teleport"}, "unknown_type"),
    ("unreadable_type", '{"type": "\\ud800"}', "unknown_type"),
    ("type_missing", {"department": "buergerbuero"}, "invalid_field"),
    ("type_not_a_string", {"type": ["ping"]}, "invalid_field"),
    ("version_2", {"v": 2, "type": "ping"}, "unsupported_version"),
    ("version_as_string", {"v": "1", "type": "ping"}, "unsupported_version"),
    ("frame_just_over_limit", _padded(MAX_FRAME_BYTES + 1), "too_large"),
    ("frame_over_limit_in_bytes_not_characters", _padded(MAX_FRAME_BYTES + 2, "€"), "too_large"),
    ("binary_frame_over_limit", b'{"type":"ping","pad":"' + b"x" * MAX_FRAME_BYTES + b'"}', "too_large"),
    ("frame_far_over_limit_below_transport_limit", "x" * (TRANSPORT_LIMIT - 1024), "too_large"),
]
ERR = "error"
REFUSED = "visit.refused"

KIOSK_CASES = [Case("kiosk", "waiting", name, frame, (ERR, code)) for name, frame, code in GENERIC] + [
    Case("kiosk", *args) for args in [
        # a type of the other direction, or one only central sends
        ("waiting", "staff_type_pickup", lambda w: {"type": "visit.pickup", "visit_id": w.waiting},
         (ERR, "unknown_type")),
        ("waiting", "staff_type_transfer", lambda w: {"type": "visit.transfer", "visit_id": w.own,
                                                      "department": "standesamt"}, (ERR, "unknown_type")),
        ("in_call", "staff_type_answer", lambda w: {"type": "rtc.answer", "visit_id": w.own, "sdp": SDP},
         (ERR, "unknown_type")),
        ("waiting", "central_type_error", {"type": "error", "code": "wrong_state", "detail": "x"},
         (ERR, "unknown_type")),
        ("waiting", "central_type_pong", {"type": "pong"}, (ERR, "unknown_type")),
        # fields
        ("idle", "missing_department", {"type": "visit.request"}, (ERR, "invalid_field")),
        ("waiting", "missing_visit_id", {"type": "visit.cancel"}, (ERR, "invalid_field")),
        ("waiting", "extra_field", lambda w: {"type": "visit.cancel", "visit_id": w.own, "reason": "bored"},
         (ERR, "invalid_field")),
        ("in_call", "extra_field_in_candidate",
         lambda w: {"type": "rtc.candidate", "visit_id": w.own, "candidate": {**CANDIDATE, "foundation": "1"}},
         (ERR, "invalid_field")),
        ("idle", "wrong_type_department", {"type": "visit.request", "department": ["buergerbuero"]},
         (ERR, "invalid_field")),
        ("idle", "wrong_type_language", {"type": "visit.request", "department": "buergerbuero", "language": 7},
         (ERR, "invalid_field")),
        ("waiting", "wrong_type_visit_id", {"type": "visit.cancel", "visit_id": 12345678901234567890},
         (ERR, "invalid_field")),
        ("in_call", "sdp_over_limit", lambda w: {"type": "rtc.offer", "visit_id": w.own, "sdp": "x" * 32_001},
         (ERR, "invalid_field")),
        ("in_call", "candidate_over_limit",
         lambda w: {"type": "rtc.candidate", "visit_id": w.own, "candidate": {"candidate": "c" * 1025}},
         (ERR, "invalid_field")),
        ("idle", "department_over_limit", {"type": "visit.request", "department": "b" * 41},
         (ERR, "invalid_field")),
        ("waiting", "visit_id_over_limit", lambda w: {"type": "visit.cancel", "visit_id": w.own + "x" * 64},
         (ERR, "invalid_field")),
        ("waiting", "version_2_of_a_valid_cancel", lambda w: {"v": 2, "type": "visit.cancel", "visit_id": w.own},
         (ERR, "unsupported_version")),
        # someone else's visit
        ("in_call", "offer_for_bystander_in_call", lambda w: {"type": "rtc.offer", "visit_id": w.calling,
                                                              "sdp": SDP}, (ERR, "not_your_visit")),
        ("in_call", "offer_for_waiting_bystander", lambda w: {"type": "rtc.offer", "visit_id": w.waiting,
                                                              "sdp": SDP}, (ERR, "not_your_visit")),
        ("in_call", "candidate_for_bystander_in_call",
         lambda w: {"type": "rtc.candidate", "visit_id": w.calling, "candidate": CANDIDATE},
         (ERR, "not_your_visit")),
        ("in_call", "offer_for_unknown_visit", {"type": "rtc.offer", "visit_id": UNKNOWN_VISIT, "sdp": SDP},
         (ERR, "not_your_visit")),
        ("waiting", "cancel_waiting_bystander", lambda w: {"type": "visit.cancel", "visit_id": w.waiting},
         (ERR, "not_your_visit")),
        ("in_call", "hangup_bystander_in_call", lambda w: {"type": "visit.hangup", "visit_id": w.calling},
         (ERR, "not_your_visit")),
        ("idle", "resume_bystanders_visit_with_its_token",
         lambda w: {"type": "visit.resume", "visit_id": w.waiting, "resume_token": w.waiting_token},
         (ERR, "not_your_visit")),
        # wrong state
        ("waiting", "offer_while_waiting", lambda w: {"type": "rtc.offer", "visit_id": w.own, "sdp": SDP},
         (ERR, "wrong_state")),
        ("waiting", "candidate_while_waiting",
         lambda w: {"type": "rtc.candidate", "visit_id": w.own, "candidate": CANDIDATE}, (ERR, "wrong_state")),
        ("in_call", "cancel_during_call", lambda w: {"type": "visit.cancel", "visit_id": w.own},
         (ERR, "wrong_state")),
        ("waiting", "hangup_while_waiting", lambda w: {"type": "visit.hangup", "visit_id": w.own},
         (ERR, "wrong_state")),
        # a second visit
        ("waiting", "second_request_while_waiting", {"type": "visit.request", "department": "buergerbuero"},
         (REFUSED, "already_waiting")),
        ("waiting", "second_request_elsewhere_while_waiting", {"type": "visit.request", "department": "standesamt"},
         (REFUSED, "already_waiting")),
        ("in_call", "request_during_call", {"type": "visit.request", "department": "standesamt"},
         (REFUSED, "already_waiting")),
        # resume
        ("waiting", "resume_with_wrong_token",
         lambda w: {"type": "visit.resume", "visit_id": w.own, "resume_token": "WrongToken_0123456789abc"},
         (ERR, "not_your_visit")),
        ("waiting", "resume_with_token_of_another_visit",
         lambda w: {"type": "visit.resume", "visit_id": w.own, "resume_token": w.waiting_token},
         (ERR, "not_your_visit")),
        ("idle", "resume_unknown_visit",
         {"type": "visit.resume", "visit_id": UNKNOWN_VISIT, "resume_token": "AnyToken_0123456789abcd"},
         (ERR, "not_your_visit")),
    ]
]

STAFF_CASES = [Case("staff", "in_call", name, frame, (ERR, code)) for name, frame, code in GENERIC] + [
    Case("staff", *args) for args in [
        # a type of the other direction, or one only central sends
        ("idle", "kiosk_type_request", {"type": "visit.request", "department": "buergerbuero"},
         (ERR, "unknown_type")),
        ("in_call", "offer_to_the_kiosk", lambda w: {"type": "rtc.offer", "visit_id": w.own, "sdp": SDP},
         (ERR, "wrong_state")),  # the clerk offers to guests only; the citizen's side offers to the clerk
        ("idle", "kiosk_type_cancel", lambda w: {"type": "visit.cancel", "visit_id": w.waiting},
         (ERR, "unknown_type")),
        ("idle", "kiosk_type_resume",
         lambda w: {"type": "visit.resume", "visit_id": w.waiting, "resume_token": w.waiting_token},
         (ERR, "unknown_type")),
        ("idle", "central_type_queue_left",
         lambda w: {"type": "queue.left", "visit_id": w.waiting, "department": "standesamt", "reason": "cancelled"},
         (ERR, "unknown_type")),
        # fields
        ("idle", "missing_department", lambda w: {"type": "visit.transfer", "visit_id": w.waiting},
         (ERR, "invalid_field")),
        ("in_call", "missing_visit_id", {"type": "visit.hangup"}, (ERR, "invalid_field")),
        ("in_call", "extra_field", lambda w: {"type": "visit.hangup", "visit_id": w.own, "reason": "done"},
         (ERR, "invalid_field")),
        ("idle", "wrong_type_status", {"type": "presence.set", "status": True}, (ERR, "invalid_field")),
        ("idle", "status_only_central_sets", {"type": "presence.set", "status": "in_call"}, (ERR, "invalid_field")),
        ("idle", "wrong_type_visit_id", {"type": "visit.pickup", "visit_id": 42}, (ERR, "invalid_field")),
        ("idle", "text_over_limit", lambda w: {"type": "visit.message", "visit_id": w.waiting, "text": "x" * 281},
         (ERR, "invalid_field")),
        ("idle", "blank_text", lambda w: {"type": "visit.message", "visit_id": w.waiting, "text": " \t "},
         (ERR, "invalid_field")),
        ("in_call", "sdp_over_limit", lambda w: {"type": "rtc.answer", "visit_id": w.own, "sdp": "x" * 32_001},
         (ERR, "invalid_field")),
        ("in_call", "version_2_of_a_valid_hangup", lambda w: {"v": 2, "type": "visit.hangup", "visit_id": w.own},
         (ERR, "unsupported_version")),
        ("idle", "pickup_without_target", {"type": "visit.pickup"}, (ERR, "invalid_field")),
        # someone else's visit
        ("in_call", "answer_for_bystander_in_call", lambda w: {"type": "rtc.answer", "visit_id": w.calling,
                                                               "sdp": SDP}, (ERR, "not_your_visit")),
        ("idle", "candidate_for_bystander_in_call",
         lambda w: {"type": "rtc.candidate", "visit_id": w.calling, "candidate": CANDIDATE},
         (ERR, "not_your_visit")),
        ("idle", "answer_for_waiting_bystander", lambda w: {"type": "rtc.answer", "visit_id": w.waiting,
                                                            "sdp": SDP}, (ERR, "not_your_visit")),
        ("idle", "hangup_bystander_in_call", lambda w: {"type": "visit.hangup", "visit_id": w.calling},
         (ERR, "not_your_visit")),
        ("idle", "hangup_waiting_bystander", lambda w: {"type": "visit.hangup", "visit_id": w.waiting},
         (ERR, "not_your_visit")),
        ("idle", "message_for_unknown_visit", {"type": "visit.message", "visit_id": UNKNOWN_VISIT, "text": "Hallo"},
         (ERR, "not_your_visit")),
        ("idle", "pickup_bystander_in_call", lambda w: {"type": "visit.pickup", "visit_id": w.calling},
         (ERR, "already_taken")),
        ("idle", "transfer_bystander_in_call",
         lambda w: {"type": "visit.transfer", "visit_id": w.calling, "department": "buergerbuero"},
         (ERR, "already_taken")),
        ("idle", "message_to_bystander_in_call",
         lambda w: {"type": "visit.message", "visit_id": w.calling, "text": "Hallo"}, (ERR, "already_taken")),
        ("idle", "pickup_unknown_visit", {"type": "visit.pickup", "visit_id": UNKNOWN_VISIT}, (ERR, "not_your_visit")),
        ("idle", "pickup_in_a_department_not_served", {"type": "visit.pickup", "department": "ordnungsamt"},
         (ERR, "forbidden")),
        ("idle", "pickup_in_an_unknown_department", {"type": "visit.pickup", "department": "nirgendwo"},
         (ERR, "forbidden")),
        ("idle", "transfer_to_unknown_department",
         lambda w: {"type": "visit.transfer", "visit_id": w.waiting, "department": "nirgendwo"},
         (ERR, "unknown_department")),
        ("idle", "transfer_to_closed_department",
         lambda w: {"type": "visit.transfer", "visit_id": w.waiting, "department": "buergermeister"},
         (ERR, "closed")),
        # wrong state
        ("in_call", "pickup_while_in_call", lambda w: {"type": "visit.pickup", "visit_id": w.waiting},
         (ERR, "wrong_state")),
        ("in_call", "pickup_next_while_in_call", {"type": "visit.pickup", "department": "standesamt"},
         (ERR, "wrong_state")),
        ("in_call", "presence_while_in_call", {"type": "presence.set", "status": "away"}, (ERR, "wrong_state")),
        ("idle", "transfer_to_the_same_department",
         lambda w: {"type": "visit.transfer", "visit_id": w.waiting, "department": "standesamt"},
         (ERR, "wrong_state")),
    ]
]
CASES = KIOSK_CASES + STAFF_CASES


def test_case_names_are_unique():
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
async def test_bad_input_is_refused_and_changes_nothing(central, case, caplog):
    world = await build_world(central, case.socket, case.state)
    before = hub_state(central.hub)
    frame = case.frame(world) if callable(case.frame) else case.frame

    replies = await exchange(world.sender, frame, direction=world.direction)  # the pong: socket still usable

    kind, value = case.expect
    assert len(replies) == 1, replies
    reply = replies[0]
    if kind == ERR:
        assert reply["type"] == "error" and reply["code"] == value, reply
        assert reply["detail"]
        # The offending type is named whenever it could be read (the console relies on it).
        readable = isinstance(frame, dict) and isinstance(frame.get("type"), str)
        assert reply["ref"] == (frame["type"] if readable else None), reply
    else:
        assert reply["type"] == kind and reply["reason"] == value, reply
    assert await world.quiet_everywhere() == {name: [] for name in world.bystanders}
    assert hub_state(central.hub) == before
    assert not server_errors(caplog)


@pytest.mark.parametrize(("socket", "state"), [("kiosk", "waiting"), ("staff", "idle")])
async def test_a_frame_far_beyond_the_transport_limit_closes_only_that_socket(central, socket, state, caplog):
    world = await build_world(central, socket, state)
    central.hub.resume_grace_s = 60  # the kiosk below resumes in milliseconds, but never race a 1 s timer
    before, before_untold = hub_state(central.hub), hub_state(central.hub, told=False)

    sending = asyncio.create_task(world.sender.send_raw("x" * (4 * TRANSPORT_LIMIT)))
    async with asyncio.timeout(SYNC_TIMEOUT):
        closing = await world.sender.ws.receive()
    # Central hangs up after reading the frame's header: the rest of 4 MiB may no longer get out.
    with contextlib.suppress(ConnectionError):
        await sending
    assert closing.type == aiohttp.WSMsgType.CLOSE, closing
    assert closing.data == aiohttp.WSCloseCode.MESSAGE_TOO_BIG == 1009

    seen = await world.quiet_everywhere()
    if socket == "kiosk":
        assert seen == {name: [] for name in world.bystanders}
        # Only the connection is gone: the visit keeps its place for the grace period, as after any lost
        # connection, and the kiosk takes it back when it reconnects.
        after = hub_state(central.hub)
        assert after == {**before, "kiosks": [k for k in before["kiosks"] if k != world.kiosk_id],
                         "grace": [world.own]}
        again = await central.kiosk(world.kiosk_token)
        resumed = await exchange(again, {"type": "visit.resume", "visit_id": world.own,
                                         "resume_token": world.own_token}, direction=m.CENTRAL_TO_KIOSK)
        assert [(r["type"], r["state"], r["position"]) for r in resumed] == [("visit.resumed", "waiting", 1)]
        assert hub_state(central.hub) == before
    else:
        # One clerk fewer on duty: the waiting kiosk may hear a longer expected wait, but keeps its place.
        update = seen.pop("waiting kiosk")
        assert [(u["type"], u["visit_id"], u["position"]) for u in update] in (
            [], [("visit.position", world.waiting, 1)]), update
        assert seen == {name: [] for name in world.bystanders if name != "waiting kiosk"}
        after = hub_state(central.hub, told=False)
        assert len(after["staff"]) == len(before_untold["staff"]) - 1
        assert after == {**before_untold, "staff": [s for s in before_untold["staff"] if s[0] in central.hub.staff]}
    assert await world.quiet_everywhere() == {name: [] for name in world.bystanders}
    assert not server_errors(caplog)


# == no entry without credentials ================================================

async def _handshake_status(session: aiohttp.ClientSession, url: str, **kwargs) -> int:
    try:
        ws = await session.ws_connect(url, **kwargs)
    except aiohttp.WSServerHandshakeError as exc:
        return exc.status
    await ws.close()
    return 101


@pytest.mark.parametrize("authorization", [
    None, "", "Bearer", "Bearer ", "Bearer wrong", "Bearer 1.wrong", "Bearer .", "Basic {token}",
    "Bearer {token}x", "Bearer 999.{secret}", "Bearer {other_id}.{secret}", "Bearer {secret}",
    "Token {token}",
])
async def test_the_kiosk_socket_needs_a_valid_token(central, authorization):
    token = central.credentials["kiosk_token"]
    _, secret = token.split(".", 1)
    other_id, _ = await central.db.create_kiosk("Andere")
    headers = {}
    if authorization is not None:
        headers["Authorization"] = authorization.format(token=token, secret=secret, other_id=other_id)
    url = central.url.replace("http", "ws") + "/ws/kiosk"
    assert await _handshake_status(central.session, url, headers=headers) == 401
    assert not central.hub.kiosks
    assert await _handshake_status(central.session, url, headers={"Authorization": f"Bearer {token}"}) == 101


async def test_a_revoked_kiosk_token_is_refused(central):
    kiosk_id, token = await central.db.create_kiosk("Ausgemustert")
    url = central.url.replace("http", "ws") + "/ws/kiosk"
    assert await _handshake_status(central.session, url, headers={"Authorization": f"Bearer {token}"}) == 101
    await central.db.revoke_kiosk(kiosk_id)
    assert await _handshake_status(central.session, url, headers={"Authorization": f"Bearer {token}"}) == 401
    assert not central.hub.kiosks


async def test_the_staff_socket_needs_a_session_and_central_as_origin(central):
    url = central.url.replace("http", "ws") + "/ws/staff"
    # no session: no console, whatever the origin
    assert await _handshake_status(central.session, url, headers={"Origin": central.url}) == 401
    assert await _handshake_status(central.session, url) == 401
    # a kiosk token is not a session
    assert await _handshake_status(central.session, url, headers={
        "Origin": central.url, "Authorization": f"Bearer {central.credentials['kiosk_token']}"}) == 401
    # a forged or stale cookie is no session either
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as forged:
        forged.cookie_jar.update_cookies({"ak_session": "forged-session-token"}, yarl.URL(central.url))
        assert await _handshake_status(forged, url, headers={"Origin": central.url}) == 401

    session = await central.login("sachbearbeiterin", central.credentials["clerk_password"])
    for origin in ("https://evil.example", "null", central.url.replace("127.0.0.1", "localhost"),
                   central.url + ".evil.example", "http://127.0.0.1"):
        assert await _handshake_status(session, url, headers={"Origin": origin}) == 403, origin
    assert await _handshake_status(session, url) == 403  # no Origin at all
    assert not central.hub.staff
    assert await _handshake_status(session, url, headers={"Origin": central.url}) == 101


# == fuzzing: thousands of frames at one kiosk and one console ====================

KIOSK_REPLIES = {  # for each message that passes decode: what central may answer, and nothing else
    "ping": {"pong"},
    "visit.request": {"visit.queued", "visit.refused", "error:rate_limited"},  # 3 at once, then 1 per 20 s
    "visit.resume": {"error:not_your_visit"},
    "visit.cancel": {"error:not_your_visit"},
    "visit.hangup": {"error:not_your_visit"},
    "rtc.offer": {"error:not_your_visit"},
    "rtc.candidate": {"error:not_your_visit"},
    "rtc.state": {"error:not_your_visit"},
    "device.fault": {"error:not_your_visit"},
    "kiosk.health": set(),  # reports for the fleet page: stored, never answered
    "kiosk.settings.applied": set(),
    "kiosk.selftest": set(),
    "kiosk.action.result": set(),
    "update.status": {"error:not_offered", "error:rate_limited"},  # no bundle was offered to this kiosk
    "booking.lookup": {"booking.found", "error:rate_limited"},  # 5 at once, then 1 per 10 s
}
STAFF_REPLIES = {
    "ping": {"pong"},
    "presence.set": {"presence.changed"},
    "visit.pickup": {"error:queue_empty", "error:forbidden", "error:already_taken", "error:invalid_field",
                     "error:not_your_visit"},
    "visit.transfer": {"error:not_your_visit"},
    "visit.message": {"error:not_your_visit"},
    "visit.hangup": {"error:not_your_visit"},
    "rtc.offer": {"error:not_your_visit"},
    "rtc.answer": {"error:not_your_visit"},
    "rtc.candidate": {"error:not_your_visit"},
    "rtc.state": {"error:not_your_visit"},
    "call.restart": {"error:not_your_visit"},
    "guest.invite": {"error:not_your_visit"},
    "guest.admit": {"error:not_your_visit"},
    "guest.remove": {"error:not_your_visit"},
}


@dataclass
class FuzzTarget:
    """One kiosk and one console of a running central; each frame goes to both, one after the other."""

    kiosk: object
    console: object
    frames: int = 0
    outcomes: dict = field(default_factory=dict)

    async def throw(self, frames: list[str | bytes]) -> None:
        for frame in frames:
            await self._one(self.kiosk, frame, m.KIOSK_TO_CENTRAL, m.CENTRAL_TO_KIOSK, KIOSK_REPLIES)
            await self._one(self.console, frame, m.STAFF_TO_CENTRAL, m.CENTRAL_TO_STAFF, STAFF_REPLIES)

    async def _one(self, peer, frame, inbound, outbound, legitimate) -> None:
        try:
            message, refusal = decode(frame, inbound), None
        except ProtocolError as err:
            message, refusal = None, err
        replies = await exchange(peer, frame, direction=outbound, pongs=2 if isinstance(message, m.Ping) else 1)
        self.frames += 1
        if message is not None and not legitimate[message.type]:  # a fleet report: stored, never answered
            assert replies == [], (frame, replies)
            self.outcomes["no reply"] = self.outcomes.get("no reply", 0) + 1
            return
        assert len(replies) == 1, (frame, replies)
        reply = replies[0]
        outcome = reply["type"] if reply["type"] != "error" else f"error:{reply['code']}"
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1
        if refusal is not None:  # central must refuse exactly as the shared codec does
            assert (reply["type"], reply["code"], reply["ref"]) == ("error", refusal.code.value, refusal.ref), frame
            return
        assert outcome in legitimate[message.type], (frame, reply)
        if reply["type"] == "error":
            assert reply["ref"] == message.type, reply
        if reply["type"] == "visit.queued":  # a real department: fine, but leave nothing behind
            ended = await exchange(peer, {"type": "visit.cancel", "visit_id": reply["visit_id"]}, direction=outbound)
            assert [(e["type"], e["reason"]) for e in ended] == [("visit.ended", "cancelled")]
            seen = await exchange(self.console, direction=m.CENTRAL_TO_STAFF)
            assert [(s["type"], s.get("visit", {}).get("visit_id") or s.get("visit_id")) for s in seen] == [
                ("queue.joined", reply["visit_id"]), ("queue.left", reply["visit_id"])]


def _fuzz(loop: asyncio.AbstractEventLoop, target: FuzzTarget, frame: st.SearchStrategy) -> None:
    """Run Hypothesis in this (worker) thread; each example's frames go out on the test's event loop.

    The examples deliberately share one running central and its two sockets: what is being tested
    is that nothing, in any order, breaks them.
    """
    @settings(max_examples=300, deadline=None, database=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    @given(st.lists(frame, min_size=1, max_size=4))
    def throw(frames):
        future = asyncio.run_coroutine_threadsafe(target.throw(frames), loop)
        try:
            future.result(timeout=30)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise

    throw()


def _json(text: st.SearchStrategy) -> st.SearchStrategy:
    return st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | text,
                        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
                        max_leaves=12)


# Strings may hold lone surrogates; json.dumps escapes them ("\ud800"), so they still travel as valid UTF-8.
TEXT = st.text(st.characters() | st.characters(categories=["Cs"]), max_size=40)
JSON = _json(TEXT)
SLUGS = [d[0] for d in DEMO_DEPARTMENTS]
ALL_TYPES = sorted({t for d in (m.KIOSK_TO_CENTRAL, m.STAFF_TO_CENTRAL, m.CENTRAL_TO_KIOSK, m.CENTRAL_TO_STAFF)
                    for t in d})
MESSAGE_CLASSES = {t: cls for d in (m.CENTRAL_TO_STAFF, m.CENTRAL_TO_KIOSK, m.STAFF_TO_CENTRAL, m.KIOSK_TO_CENTRAL)
                   for t, cls in d.items()}  # inbound classes win for shared names (visit.message)
ID = st.from_regex(r"[A-Za-z0-9_-]{16,64}", fullmatch=True)
FIELD_VALUES = {  # plausible values per field name, each mixed with arbitrary JSON
    "visit_id": ID | st.just(UNKNOWN_VISIT),
    "resume_token": ID,
    "department": st.sampled_from(SLUGS + ["nirgendwo", ""]) | st.from_regex(r"[a-z0-9][a-z0-9-]{0,45}",
                                                                              fullmatch=True),
    "language": st.sampled_from(["de", "tr", "pt-BR", "xx-Y", "DE"]),
    "sdp": st.sampled_from([SDP, "v=0"]) | st.text(min_size=8, max_size=60),
    "candidate": st.fixed_dictionaries({}, optional={"candidate": st.none() | st.text(max_size=40),
                                                     "sdpMid": st.none() | st.text(max_size=4),
                                                     "sdpMLineIndex": st.none() | st.integers(-2, 70)}),
    "status": st.sampled_from(["available", "away", "in_call", "AWAY"]),
    "text": st.text(max_size=300),
    "code": st.sampled_from(["wrong_state", "replaced"]),
    "presence": st.sampled_from(["available", "in_call", "away"]),
}


def _mostly(plausible: st.SearchStrategy, otherwise: st.SearchStrategy) -> st.SearchStrategy:
    """``plausible`` about three times in four, so that enough messages get past decode to the hub."""
    # (Not st.one_of(plausible, plausible, plausible, otherwise): one_of flattens its branches, and JSON has many.)
    return st.sampled_from([True, True, True, False]).flatmap(lambda pick: plausible if pick else otherwise)


def _plausible(kind: str) -> st.SearchStrategy:
    """A message of ``kind``: its real fields with mostly plausible values, maybe one missing, maybe extras."""
    model = MESSAGE_CLASSES[kind].model_fields
    names = [f for f in model if f not in ("type", "v")]
    value = {f: _mostly(FIELD_VALUES.get(f, JSON), JSON) for f in names}
    fields = st.fixed_dictionaries({f: value[f] for f in names if model[f].is_required()},
                                   optional={f: value[f] for f in names if not model[f].is_required()})
    missing = _mostly(st.none(), st.sampled_from(names) if names else st.none())
    extras = _mostly(st.just({}), st.dictionaries(st.sampled_from(sorted(FIELD_VALUES)) | TEXT, JSON,
                                                  min_size=1, max_size=2))
    version = st.fixed_dictionaries({}, optional={"v": st.sampled_from([1, 1, 1, 2, 0, "1", 1.0, True])})
    return st.tuples(fields, missing, extras, version).map(
        lambda t: {**t[2], **{k: v for k, v in t[0].items() if k != t[1]}, **t[3], "type": kind})


INBOUND_TYPES = sorted(set(m.KIOSK_TO_CENTRAL) | set(m.STAFF_TO_CENTRAL))
FUZZ_STRATEGIES = {
    "random text and bytes": st.text(max_size=200) | st.binary(max_size=200),
    "random JSON values": (JSON | st.dictionaries(st.sampled_from(["type", "v", *FIELD_VALUES]) | TEXT, JSON,
                                                  max_size=4)).map(json.dumps),
    # Half of them of a type central accepts from someone, so that many get past decode to the hub.
    "plausible messages": (st.sampled_from(INBOUND_TYPES) | st.sampled_from(ALL_TYPES)).flatmap(_plausible)
    .map(json.dumps),
}


def test_the_reply_tables_cover_every_inbound_type():
    assert set(KIOSK_REPLIES) == set(m.KIOSK_TO_CENTRAL)
    assert set(STAFF_REPLIES) == set(m.STAFF_TO_CENTRAL)


async def test_thousands_of_random_frames_are_each_answered_and_break_nothing(central, caplog):
    kiosk, console = await central.kiosk(), await central.clerk()
    target = FuzzTarget(kiosk, console)
    loop = asyncio.get_running_loop()
    for strategy in FUZZ_STRATEGIES.values():
        await asyncio.to_thread(_fuzz, loop, target, strategy)

    print(f"{target.frames} frames:", dict(sorted(target.outcomes.items(), key=lambda kv: -kv[1])))
    assert target.frames >= 2000, target.frames
    assert sum(n for o, n in target.outcomes.items() if not o.startswith("error:")) > 0, target.outcomes
    assert not server_errors(caplog)
    hub = central.hub
    assert len(hub.rooms) == 0 and not hub._grace
    assert len(hub.kiosks) == 1 and len(hub.staff) == 1  # the very same two sockets, never replaced or closed

    # A normal visit still works on the same two sockets.
    if (await exchange(console, {"type": "presence.set", "status": "available"}, direction=m.CENTRAL_TO_STAFF)
            != [{"v": 1, "type": "presence.changed", "presence": "available"}]):
        raise AssertionError("presence.set available was not confirmed")
    hub.visit_requests = Buckets(VISIT_REQUESTS)  # as after the wait rate_limited asked for: the fuzz used it up
    visit = await request_visit(kiosk, "buergerbuero")
    assert (await console.recv("queue.joined"))["visit"]["visit_id"] == visit["visit_id"]
    await pick_up(console, kiosk, visit)
    await kiosk.send(type="rtc.offer", visit_id=visit["visit_id"], sdp=SDP)
    assert (await console.recv("rtc.offer"))["sdp"] == SDP
    await console.send(type="rtc.answer", visit_id=visit["visit_id"], sdp=SDP)
    assert (await kiosk.recv("rtc.answer"))["sdp"] == SDP
    await console.send(type="rtc.candidate", visit_id=visit["visit_id"], candidate=CANDIDATE)
    assert (await kiosk.recv("rtc.candidate"))["candidate"] == CANDIDATE
    await kiosk.send(type="visit.hangup", visit_id=visit["visit_id"])
    assert (await kiosk.recv("visit.ended"))["reason"] == "hangup_kiosk"
    assert (await console.recv("visit.ended"))["reason"] == "hangup_kiosk"
    assert len(hub.rooms) == 0 and not hub._grace
    assert all(peer.visit_id is None for peer in hub.staff.values())
    assert not server_errors(caplog)
