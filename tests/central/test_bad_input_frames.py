"""Bad frames get a clear error, change nothing and disturb no other visit.

Every case, from a kiosk and from a clerk's console, runs in the world of tests/central/bad_input.py.
After the offending frame, the sender's socket must still answer a ping, no bystander
(nor the sender's own call partner) may receive anything, and the hub must be unchanged.
"""
from __future__ import annotations

from dataclasses import dataclass

import pytest

from central.live.sockets import TRANSPORT_LIMIT
from protocol.codec import MAX_FRAME_BYTES
from tests.central.bad_input import (
    CANDIDATE,
    SDP,
    UNKNOWN_VISIT,
    build_world,
    exchange,
    hub_state,
    server_errors,
)

pytestmark = pytest.mark.usefixtures("cheap_password_hashing")  # hundreds of logins


def _padded(size: int, pad: str = "x") -> str:
    """A ping padded to exactly ``size`` bytes of UTF-8."""
    head, tail = '{"type":"ping","pad":"', '"}'
    room = size - len(head) - len(tail)
    text = head + pad * (room // len(pad.encode())) + "x" * (room % len(pad.encode())) + tail
    assert len(text.encode()) == size
    return text


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
