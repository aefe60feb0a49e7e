"""Fuzzing: thousands of random, malformed and plausible frames at one kiosk and one console of a running
central. Each is answered as the shared codec and the reply tables allow, nothing breaks, and a normal visit
still works on the very same two sockets afterwards."""
from __future__ import annotations

import asyncio
import concurrent.futures
import json
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from central.live.limits import VISIT_REQUESTS, Buckets
from central.seed import DEMO_DEPARTMENTS
from protocol import messages as m
from protocol.codec import decode
from protocol.errors import ProtocolError
from tests.central.bad_input import CANDIDATE, SDP, UNKNOWN_VISIT, exchange, pick_up, request_visit, server_errors

pytestmark = pytest.mark.usefixtures("cheap_password_hashing")


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
