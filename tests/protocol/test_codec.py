"""protocol.codec.decode: every message type round-trips, every way a frame can be wrong has its own code."""
from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol import booking_lookup as bl
from protocol import fleet as f
from protocol import guests as g
from protocol import messages as m
from protocol import participants as p
from protocol import updates as u
from protocol.codec import MAX_FRAME_BYTES, decode, encode, error_frame
from protocol.errors import ErrorCode, ProtocolError

VID = "AbCdEfGhIjKlMnOpQrSt_-12"  # 24 URL-safe characters, like central's ids
TOKEN = "tOkEn_-0123456789abcdef"
SDP = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
ICE = [m.IceServer(urls=["stun:stun.example.org:3478"]),
       m.IceServer(urls=["turn:turn.example.org:3478?transport=udp", "turns:turn.example.org:5349"],
                   username="kiosk", credential="geheim")]
CANDIDATE = m.Candidate(candidate="candidate:1 1 udp 2122260223 192.0.2.1 54400 typ host", sdpMid="0",
                        sdpMLineIndex=0)
WAITING = m.WaitingVisit(visit_id=VID, department="buergerbuero", kiosk_location="Rathaus, Foyer",
                         language="pt-BR", arrived_at=1_760_000_000.25)
HEALTH = f.KioskHealth(
    type="kiosk.health", version="0.3.0+1a2b3c4d5e6f", slot="A", uptime_s=3600, boot_reason="power_on",
    devices={"camera": f.DeviceHealth(state="ok", source="selftest", name="imx708"),
             "microphone": f.DeviceHealth(state="failed", source="live", fault="microphone_failed"),
             "speaker": f.DeviceHealth(state="unknown", source="none"),
             "button": f.DeviceHealth(state="ok", source="live")},
    cpu_temp_c=61.5, throttling=["soft_temperature_limit"], throttling_since_boot=["under_voltage"],
    data_used_bytes=120_000_000, data_total_bytes=30_000_000_000, rtt_ms=12.5,
    faults=[f.RecentFault(code="microphone_failed", device="microphone", count=2, last_s_ago=40)],
    settings_version=7)
SETTINGS = f.KioskSettings(version=7, location="Bücherei Musterdorf", departments=["buergerbuero", "standesamt"],
                           default_language="de", languages=["de", "en", "tr"], volume_pct=70, mic_gain_db=0,
                           brightness_pct=80, screen_off_outside_hours=True)
DEPARTMENT = m.DepartmentInfo(slug="ordnungsamt", name="Ordnungsamt", open=False,
                              next_opening="2026-11-23T14:00:00+01:00", languages=["de", "en"])

# One valid example of every message type, per direction. Shared types (rtc.candidate, error, ...) appear in
# every direction that carries them.
EXAMPLES: dict[str, dict[str, m.Message]] = {
    "KIOSK_TO_CENTRAL": {
        "visit.request": m.VisitRequest(type="visit.request", department="buergerbuero", language="tr"),
        "visit.resume": m.VisitResume(type="visit.resume", visit_id=VID, resume_token=TOKEN),
        "visit.cancel": m.VisitCancel(type="visit.cancel", visit_id=VID),
        "visit.hangup": m.VisitHangup(type="visit.hangup", visit_id=VID),
        "rtc.offer": m.RtcOffer(type="rtc.offer", visit_id=VID, sdp=SDP),
        "rtc.candidate": m.RtcCandidate(type="rtc.candidate", visit_id=VID, candidate=CANDIDATE),
        "rtc.state": m.RtcState(type="rtc.state", visit_id=VID, state="connected"),
        "ping": m.Ping(type="ping"),
        "kiosk.health": HEALTH,
        "kiosk.settings.applied": f.SettingsApplied(type="kiosk.settings.applied", version=7),
        "kiosk.selftest": f.SelftestReport(type="kiosk.selftest", started_by="button", items=[
            f.SelftestItem(item="camera", result="pass", device="imx708"),
            f.SelftestItem(item="sound_loop", result="fail", fault="tone_not_heard"),
            f.SelftestItem(item="clock", result="skipped")]),
        "kiosk.action.result": f.ActionResult(type="kiosk.action.result", action_id="a1b2c3d4e5", outcome="busy"),
        "device.fault": f.DeviceFault(type="device.fault", device="camera", fault="camera_failed", visit_id=VID),
        "update.status": u.UpdateStatus(type="update.status", bundle_id=3, version="0.4.0+1a2b3c4d5e6f",
                                        state="rolled_back", fault="health_check_failed", check="kiosk_page",
                                        running_version="0.3.0+0f0e0d0c0b0a"),
        "booking.lookup": bl.BookingLookup(type="booking.lookup", booking="7K3M9QX2"),
    },
    "STAFF_TO_CENTRAL": {
        "presence.set": m.PresenceSet(type="presence.set", status="away"),
        "visit.pickup": m.VisitPickup(type="visit.pickup", visit_id=VID),
        "visit.transfer": m.VisitTransfer(type="visit.transfer", visit_id=VID, department="standesamt"),
        "visit.message": m.VisitMessage(type="visit.message", visit_id=VID, text="Ich bin gleich bei Ihnen"),
        "visit.hangup": m.VisitHangup(type="visit.hangup", visit_id=VID),
        "rtc.answer": m.RtcAnswer(type="rtc.answer", visit_id=VID, sdp=SDP),
        "rtc.candidate": m.RtcCandidate(type="rtc.candidate", visit_id=VID, candidate=m.Candidate()),
        "rtc.state": m.RtcState(type="rtc.state", visit_id=VID, state="failed"),
        "call.restart": m.CallRestart(type="call.restart", visit_id=VID),
        "ping": m.Ping(type="ping"),
        "rtc.offer": m.RtcOffer(type="rtc.offer", visit_id=VID, peer="g-4f9a2c", sdp=SDP),
        "guest.invite": p.GuestInvite(type="guest.invite", visit_id=VID, role="interpreter", label="Dolmetscherin"),
        "guest.admit": p.GuestAdmit(type="guest.admit", visit_id=VID, peer="g-4f9a2c"),
        "guest.remove": p.GuestRemove(type="guest.remove", visit_id=VID, peer="g-4f9a2c"),
    },
    "CENTRAL_TO_KIOSK": {
        "welcome": m.Welcome(type="welcome", kiosk_location="Rathaus, Foyer", ice_servers=ICE,
                             departments=[DEPARTMENT, m.DepartmentInfo(slug="buergerbuero", name="Bürgerbüro",
                                                                       open=True)]),
        "visit.queued": m.VisitQueued(type="visit.queued", visit_id=VID, resume_token=TOKEN,
                                      department="buergerbuero", position=2, expected_wait_s=600),
        "visit.position": m.VisitPosition(type="visit.position", visit_id=VID, department="buergerbuero",
                                          position=1, expected_wait_s=0),
        "visit.transferred": m.VisitTransferred(type="visit.transferred", visit_id=VID, department="standesamt",
                                                position=3, expected_wait_s=900, resume_token=TOKEN),
        "visit.resumed": m.VisitResumed(type="visit.resumed", visit_id=VID, department="buergerbuero",
                                        state="waiting", position=1, expected_wait_s=30, resume_token=TOKEN),
        "visit.refused": m.VisitRefused(type="visit.refused", department="ordnungsamt", reason="closed",
                                        next_opening="2026-11-23T14:00:00+01:00"),
        "visit.message": m.VisitMessageToKiosk(type="visit.message", visit_id=VID, text="Einen Moment bitte"),
        "call.start": m.CallStart(type="call.start", visit_id=VID, ice_servers=ICE, resume_token=TOKEN),
        "call.failed": m.CallFailed(type="call.failed", visit_id=VID, reason="media_timeout", position=1,
                                    expected_wait_s=0, resume_token=TOKEN),
        "rtc.answer": m.RtcAnswer(type="rtc.answer", visit_id=VID, sdp=SDP),
        "rtc.candidate": m.RtcCandidate(type="rtc.candidate", visit_id=VID, candidate=CANDIDATE),
        "visit.ended": m.VisitEnded(type="visit.ended", visit_id=VID, reason="hangup_staff"),
        "error": m.Error(type="error", code="wrong_state", detail="no clerk has picked up this visit yet",
                         ref="rtc.offer"),
        "pong": m.Pong(type="pong"),
        "kiosk.settings": f.SettingsMessage(type="kiosk.settings", settings=SETTINGS),
        "kiosk.action": f.KioskAction(type="kiosk.action", action_id="a1b2c3d4e5", action="reboot", force=True),
        "update.offer": u.UpdateOffer(type="update.offer", bundle_id=3, version="0.4.0+1a2b3c4d5e6f",
                                      size_bytes=412_000_000, sha256="ab" * 32,
                                      path="/updates/bundles/3/amtsklingel-0.4.0.raucb", max_kbit_s=2000),
        "update.withdraw": u.UpdateWithdraw(type="update.withdraw", bundle_id=3),
        "call.participant_joined": p.ParticipantJoined(type="call.participant_joined", visit_id=VID, peer="g-4f9a2c",
                                                       role="interpreter", label="Dolmetscherin", offer=True),
        "call.participant_left": p.ParticipantLeft(type="call.participant_left", visit_id=VID, peer="g-4f9a2c"),
        "booking.found": bl.BookingFound(type="booking.found", booking="7K3M9QX2", status="booking_other_time",
                                         department="buergerbuero", slot_start="2026-12-07T09:00:00+01:00",
                                         slot_end="2026-12-07T09:15:00+01:00"),
    },
    "CENTRAL_TO_STAFF": {
        "console.snapshot": m.ConsoleSnapshot(
            type="console.snapshot", staff_name="Frau Demir", presence="available",
            departments=[m.DepartmentQueue(slug="buergerbuero", name="Bürgerbüro", open=True, waiting=[WAITING])],
            transfer_targets=[DEPARTMENT], ice_servers=ICE, server_time=1_760_000_100.5),
        "queue.joined": m.QueueJoined(type="queue.joined", visit=WAITING, reason="transferred"),
        "queue.left": m.QueueLeft(type="queue.left", visit_id=VID, department="buergerbuero", reason="picked_up"),
        "call.assigned": m.CallAssigned(type="call.assigned", visit=WAITING, ice_servers=[], resumed=True),
        "call.failed": m.CallFailed(type="call.failed", visit_id=VID, reason="ice_failed"),
        "presence.changed": m.PresenceChanged(type="presence.changed", presence="in_call"),
        "rtc.offer": m.RtcOffer(type="rtc.offer", visit_id=VID, sdp=SDP),
        "rtc.candidate": m.RtcCandidate(type="rtc.candidate", visit_id=VID, candidate=CANDIDATE),
        "visit.ended": m.VisitEnded(type="visit.ended", visit_id=VID, reason="kiosk_lost"),
        "error": m.Error(type="error", code="already_taken", detail="another clerk was faster"),
        "pong": m.Pong(type="pong"),
        "call.notice": f.CallNotice(type="call.notice", visit_id=VID, notice="kiosk_camera_failed"),
        "call.participant_joined": p.ParticipantJoined(type="call.participant_joined", visit_id=VID, peer="g-4f9a2c",
                                                       role="interpreter", label="Dolmetscherin", offer=True),
        "call.participant_left": p.ParticipantLeft(type="call.participant_left", visit_id=VID, peer="g-4f9a2c"),
        "rtc.answer": m.RtcAnswer(type="rtc.answer", visit_id=VID, peer="g-4f9a2c", sdp=SDP),
        "guest.status": p.GuestStatus(type="guest.status", visit_id=VID, peer="g-4f9a2c", role="colleague", label="",
                                      state="invited", link="/guest#" + "s" * 32),
    },
    "GUEST_TO_CENTRAL": {
        "guest.hello": g.GuestHello(type="guest.hello", link="s" * 32, language="en"),
        "guest.rejoin": g.GuestRejoin(type="guest.rejoin", key="k" * 32, language="en"),
        "guest.ready": g.GuestReady(type="guest.ready", visit_id=VID),
        "guest.leave": g.GuestLeave(type="guest.leave", visit_id=VID),
        "rtc.offer": m.RtcOffer(type="rtc.offer", visit_id=VID, peer="g-77aa01", sdp=SDP),
        "rtc.answer": m.RtcAnswer(type="rtc.answer", visit_id=VID, peer="citizen", sdp=SDP),
        "rtc.candidate": m.RtcCandidate(type="rtc.candidate", visit_id=VID, peer="clerk", candidate=CANDIDATE),
        "rtc.state": m.RtcState(type="rtc.state", visit_id=VID, peer="citizen", state="connected"),
        "ping": m.Ping(type="ping"),
    },
    "CENTRAL_TO_GUEST": {
        "guest.welcome": g.GuestWelcome(type="guest.welcome", visit_id=VID, peer="g-4f9a2c", role="interpreter",
                                        label="Dolmetscherin", department="Bürgerbüro", ice_servers=ICE,
                                        rejoin="k" * 32, rejoin_within_s=120.0),
        "guest.refused": g.GuestRefused(type="guest.refused", reason="invalid_link"),
        "guest.admitted": g.GuestAdmitted(type="guest.admitted", visit_id=VID),
        "guest.removed": g.GuestRemoved(type="guest.removed", visit_id=VID),
        "call.participant_joined": p.ParticipantJoined(type="call.participant_joined", visit_id=VID, peer="clerk",
                                                       role="clerk", label="Frau Demir", offer=False),
        "call.participant_left": p.ParticipantLeft(type="call.participant_left", visit_id=VID, peer="g-77aa01"),
        "rtc.offer": m.RtcOffer(type="rtc.offer", visit_id=VID, peer="citizen", sdp=SDP),
        "rtc.answer": m.RtcAnswer(type="rtc.answer", visit_id=VID, peer="g-77aa01", sdp=SDP),
        "rtc.candidate": m.RtcCandidate(type="rtc.candidate", visit_id=VID, peer="clerk", candidate=CANDIDATE),
        "visit.ended": m.VisitEnded(type="visit.ended", visit_id=VID, reason="hangup_staff"),
        "call.failed": m.CallFailed(type="call.failed", visit_id=VID, reason="media_timeout"),
        "error": m.Error(type="error", code="unknown_peer", detail="g-77aa01 is not in this call", ref="rtc.answer"),
        "pong": m.Pong(type="pong"),
    },
    "ENROL_TO_CENTRAL": {
        "enrol.hello": f.EnrolHello(type="enrol.hello", serial="10000000d3adb33f", model="Raspberry Pi 4 Model B",
                                    version="0.3.0"),
        "ping": m.Ping(type="ping"),
    },
    "CENTRAL_TO_ENROL": {
        "enrol.code": f.EnrolCodeOffer(type="enrol.code", code="K7MP-4QX9", expires_in_s=600,
                                       claim_url="https://buergerbuero.musterdorf.de/admin/kiosks/enrol?code=K7MP-4QX9"),
        "enrol.done": f.EnrolDone(type="enrol.done", token="12." + "A" * 43, location="Bücherei Musterdorf"),
        "error": m.Error(type="error", code="rate_limited", detail="too many units enrolling", retry_after_s=30),
        "pong": m.Pong(type="pong"),
    },
}
DIRECTIONS = {name: getattr(m, name, None) or getattr(g, name) for name in EXAMPLES}
ROUND_TRIPS = [(d, t) for d, examples in EXAMPLES.items() for t in examples]
DECODE_CODES = {ErrorCode.TOO_LARGE, ErrorCode.BAD_JSON, ErrorCode.UNSUPPORTED_VERSION, ErrorCode.UNKNOWN_TYPE,
                ErrorCode.INVALID_FIELD}


def refused(frame: str | bytes, direction=m.KIOSK_TO_CENTRAL) -> ProtocolError:
    with pytest.raises(ProtocolError) as info:
        decode(frame, direction)
    return info.value


def frame_of(**fields) -> str:
    return json.dumps(fields)


# -- every message type, valid ------------------------------------------------------------------------------

@pytest.mark.parametrize("direction", EXAMPLES)
def test_the_example_table_covers_every_type_of_the_direction(direction):
    assert set(EXAMPLES[direction]) == set(DIRECTIONS[direction])
    for kind, example in EXAMPLES[direction].items():
        assert type(example) is DIRECTIONS[direction][kind] and example.type == kind


@pytest.mark.parametrize(("direction", "kind"), ROUND_TRIPS, ids=[f"{d}:{t}" for d, t in ROUND_TRIPS])
def test_every_message_type_round_trips(direction, kind):
    message = EXAMPLES[direction][kind]
    frame = encode(message)
    assert json.loads(frame)["v"] == 1 and json.loads(frame)["type"] == kind
    assert decode(frame, DIRECTIONS[direction]) == message
    assert decode(frame.encode(), DIRECTIONS[direction]) == message  # as a binary frame, too
    # A sender may leave out "v" and every optional field left at its default.
    minimal = message.model_dump(exclude_defaults=True, exclude={"v"})
    minimal["type"] = kind
    assert decode(json.dumps(minimal), DIRECTIONS[direction]) == message


@pytest.mark.parametrize(("direction", "kind"), ROUND_TRIPS, ids=[f"{d}:{t}" for d, t in ROUND_TRIPS])
def test_a_type_is_only_accepted_in_the_directions_that_define_it(direction, kind):
    frame = encode(EXAMPLES[direction][kind])
    for other, allowed in DIRECTIONS.items():
        if kind in allowed:
            assert decode(frame, allowed).type == kind
        else:
            err = refused(frame, allowed)
            assert err.code is ErrorCode.UNKNOWN_TYPE and err.ref == kind, other


def test_shared_types_are_the_same_class_wherever_they_travel():
    # The hub relays rtc.* by re-encoding what it decoded: both ends must agree on the shape.
    for kind in ("rtc.offer", "rtc.answer", "rtc.candidate", "visit.hangup", "ping", "error", "pong"):
        classes = {d[kind] for d in DIRECTIONS.values() if kind in d}
        assert len(classes) == 1, kind


def test_short_text_is_stripped_and_candidate_end_marker_is_accepted():
    msg = decode(frame_of(type="visit.message", visit_id=VID, text="  Hallo  "), m.STAFF_TO_CENTRAL)
    assert msg.text == "Hallo"
    end = decode(frame_of(type="rtc.candidate", visit_id=VID, candidate={"candidate": ""}), m.KIOSK_TO_CENTRAL)
    assert end.candidate.candidate == ""
    assert decode(frame_of(type="visit.pickup", department="standesamt"), m.STAFF_TO_CENTRAL).visit_id is None


# -- too_large -------------------------------------------------------------------------------------------

def _padded(size: int, pad_char: str = "x") -> str:
    """A ping padded to exactly ``size`` bytes of UTF-8."""
    head, tail = '{"type":"ping","pad":"', '"}'
    room = size - len(head) - len(tail)
    per = len(pad_char.encode())
    text = head + pad_char * (room // per) + "x" * (room % per) + tail
    assert len(text.encode()) == size
    return text


def test_a_frame_of_exactly_the_limit_is_read_one_byte_more_is_too_large():
    at_limit = refused(_padded(MAX_FRAME_BYTES))
    assert at_limit.code is ErrorCode.INVALID_FIELD and "pad" in at_limit.detail  # it was parsed
    over = refused(_padded(MAX_FRAME_BYTES + 1))
    assert over.code is ErrorCode.TOO_LARGE and over.ref is None
    assert str(MAX_FRAME_BYTES) in over.detail
    assert refused(_padded(MAX_FRAME_BYTES + 1).encode()).code is ErrorCode.TOO_LARGE


def test_the_limit_counts_utf8_bytes_not_characters():
    # 22,000 "€" are 22,000 characters but 66,000 bytes on the wire.
    frame = _padded(MAX_FRAME_BYTES + 2, "€")
    assert len(frame) < MAX_FRAME_BYTES < len(frame.encode())
    err = refused(frame)
    assert err.code is ErrorCode.TOO_LARGE and str(MAX_FRAME_BYTES + 2) in err.detail
    assert refused(_padded(MAX_FRAME_BYTES - 1, "€")).code is ErrorCode.INVALID_FIELD


def test_size_is_checked_before_anything_else():
    assert refused("[" * (MAX_FRAME_BYTES + 1)).code is ErrorCode.TOO_LARGE
    assert refused(b"\xff" * (MAX_FRAME_BYTES + 1)).code is ErrorCode.TOO_LARGE


# -- bad_json --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("frame", [
    "", " ", "{", '{"type": "ping"', "{'type': 'ping'}", '{"type": "ping"} trailing', "ping", "NaN]",
    '{"type": "ping",}', '{"v": ' + "1" * 5000 + "}",  # more digits than int() accepts
    "[" * 5000 + "]" * 5000, '{"a":' * 5000 + "1" + "}" * 5000,  # nesting deeper than the parser's recursion
])
def test_invalid_json_is_bad_json(frame):
    err = refused(frame)
    assert err.code is ErrorCode.BAD_JSON and err.ref is None


@pytest.mark.parametrize("frame", ['["ping"]', '"ping"', "null", "42", "true", "[]", '[{"type": "ping"}]', "1.5"])
def test_json_that_is_not_an_object_is_bad_json(frame):
    err = refused(frame)
    assert err.code is ErrorCode.BAD_JSON and "object" in err.detail


@pytest.mark.parametrize("frame", [
    b"\x80\x81\xfe\xff garbage", b"\x00\x01\x02", b"\xc3\x28", b"\xed\xa0\x80",  # not UTF-8 (last: a surrogate)
    '{"type": "ping"}'.encode("utf-16"), '{"type": "ping"}'.encode("utf-32-le"),  # JSON, but not UTF-8
    b"\xef\xbb\xbf" + b'{"type": "ping"}',  # a byte order mark is not JSON either
])
def test_a_binary_frame_must_be_utf8_json(frame):
    assert refused(frame).code is ErrorCode.BAD_JSON


def test_a_binary_frame_with_utf8_json_is_read_like_text():
    assert decode(b'{"type": "ping"}', m.KIOSK_TO_CENTRAL) == m.Ping(type="ping")


# -- unsupported_version ---------------------------------------------------------------------------------

@pytest.mark.parametrize("version", [2, 0, -1, 1.0, "1", True, None, [1], {"major": 1}, 10**30])
def test_any_version_but_the_integer_1_is_unsupported(version):
    err = refused(frame_of(v=version, type="ping"))
    assert err.code is ErrorCode.UNSUPPORTED_VERSION and err.ref == "ping"


def test_version_is_checked_before_type_and_fields():
    # A v2 client learns about the version first, not about fields that v2 may have renamed.
    assert refused(frame_of(v=2)).code is ErrorCode.UNSUPPORTED_VERSION
    assert refused(frame_of(v=2, type="visit.teleport")).code is ErrorCode.UNSUPPORTED_VERSION
    assert refused(frame_of(v=2, type="visit.request", bogus=1)).code is ErrorCode.UNSUPPORTED_VERSION


# -- unknown_type ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["visit.teleport", "", "PING", "ping ", "Visit.Request", "visit_request"])
def test_an_unknown_type_is_unknown_type(kind):
    err = refused(frame_of(type=kind))
    assert err.code is ErrorCode.UNKNOWN_TYPE and err.ref == kind


@pytest.mark.parametrize(("kind", "direction"), [
    ("visit.pickup", m.KIOSK_TO_CENTRAL), ("visit.message", m.KIOSK_TO_CENTRAL), ("rtc.answer", m.KIOSK_TO_CENTRAL),
    ("welcome", m.KIOSK_TO_CENTRAL), ("error", m.KIOSK_TO_CENTRAL), ("pong", m.KIOSK_TO_CENTRAL),
    ("visit.request", m.STAFF_TO_CENTRAL), ("guest.hello", m.STAFF_TO_CENTRAL), ("visit.cancel", m.STAFF_TO_CENTRAL),
    ("console.snapshot", m.STAFF_TO_CENTRAL), ("call.assigned", m.STAFF_TO_CENTRAL),
    ("visit.pickup", m.CENTRAL_TO_KIOSK), ("visit.request", m.CENTRAL_TO_STAFF),
    ("guest.admit", g.GUEST_TO_CENTRAL), ("visit.hangup", g.GUEST_TO_CENTRAL), ("visit.pickup", g.GUEST_TO_CENTRAL),
    ("guest.status", g.GUEST_TO_CENTRAL), ("guest.welcome", g.GUEST_TO_CENTRAL),
])
def test_a_type_of_another_direction_is_unknown_type(kind, direction):
    # Even a perfectly valid message of that type is refused before its fields are looked at.
    example = next(e[kind] for e in EXAMPLES.values() if kind in e)
    err = refused(encode(example), direction)
    assert err.code is ErrorCode.UNKNOWN_TYPE and err.ref == kind


def test_a_long_or_unencodable_type_is_not_echoed_back():
    err = refused(frame_of(type="x" * 41))
    assert err.code is ErrorCode.UNKNOWN_TYPE and err.ref is None
    assert refused(frame_of(type="x" * 40)).ref == "x" * 40
    # A lone surrogate is valid JSON but no valid UTF-8: echoing it made the error frame itself unencodable.
    err = refused('{"type": "\\ud800"}')
    assert err.code is ErrorCode.UNKNOWN_TYPE and err.ref is None
    assert json.loads(error_frame(err))["code"] == "unknown_type"


# -- invalid_field ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("fields", [{}, {"type": None}, {"type": 1}, {"type": ["ping"]}, {"type": {"x": 1}},
                                    {"type": True}, {"typ": "ping"}])
def test_a_missing_or_non_string_type_is_invalid_field(fields):
    err = refused(json.dumps(fields))
    assert err.code is ErrorCode.INVALID_FIELD and "type" in err.detail and err.ref is None


INVALID_FIELDS = [
    # (direction, message, field named in the detail)
    # missing
    (m.KIOSK_TO_CENTRAL, {"type": "visit.request"}, "department"),
    (m.KIOSK_TO_CENTRAL, {"type": "visit.resume", "visit_id": VID}, "resume_token"),
    (m.KIOSK_TO_CENTRAL, {"type": "rtc.offer", "sdp": SDP}, "visit_id"),
    (m.STAFF_TO_CENTRAL, {"type": "visit.transfer", "visit_id": VID}, "department"),
    (m.STAFF_TO_CENTRAL, {"type": "presence.set"}, "status"),
    # extra
    (m.KIOSK_TO_CENTRAL, {"type": "ping", "extra": 1}, "extra"),
    (m.KIOSK_TO_CENTRAL, {"type": "visit.request", "department": "standesamt", "departement": "x"}, "departement"),
    (m.STAFF_TO_CENTRAL, {"type": "visit.pickup", "visit_id": VID, "force": True}, "force"),
    (m.KIOSK_TO_CENTRAL, {"type": "rtc.candidate", "visit_id": VID, "candidate": {"usernameFragment": "x"}},
     "usernameFragment"),
    # wrong type
    (m.KIOSK_TO_CENTRAL, {"type": "visit.request", "department": 42}, "department"),
    (m.KIOSK_TO_CENTRAL, {"type": "visit.cancel", "visit_id": None}, "visit_id"),
    (m.KIOSK_TO_CENTRAL, {"type": "rtc.candidate", "visit_id": VID, "candidate": "candidate:1"}, "candidate"),
    (m.STAFF_TO_CENTRAL, {"type": "presence.set", "status": True}, "status"),
    (m.STAFF_TO_CENTRAL, {"type": "visit.message", "visit_id": VID, "text": ["Hallo"]}, "text"),
    (m.STAFF_TO_CENTRAL, {"type": "rtc.candidate", "visit_id": VID, "candidate": {"sdpMLineIndex": "first"}},
     "sdpMLineIndex"),
    # out of limits / pattern / choice
    (m.KIOSK_TO_CENTRAL, {"type": "rtc.offer", "visit_id": VID, "sdp": "x" * 32_001}, "sdp"),
    (m.KIOSK_TO_CENTRAL, {"type": "rtc.offer", "visit_id": VID, "sdp": "v=0"}, "sdp"),
    (m.KIOSK_TO_CENTRAL, {"type": "visit.request", "department": "b" * 41}, "department"),
    (m.KIOSK_TO_CENTRAL, {"type": "visit.request", "department": "Bürgerbüro"}, "department"),
    (m.KIOSK_TO_CENTRAL, {"type": "visit.request", "department": "standesamt", "language": "deutsch"}, "language"),
    (m.KIOSK_TO_CENTRAL, {"type": "visit.cancel", "visit_id": "short"}, "visit_id"),
    (m.KIOSK_TO_CENTRAL, {"type": "visit.cancel", "visit_id": "../../etc/passwd/aaaaaaaa"}, "visit_id"),
    (m.KIOSK_TO_CENTRAL, {"type": "visit.resume", "visit_id": VID, "resume_token": "x" * 65}, "resume_token"),
    (m.KIOSK_TO_CENTRAL, {"type": "rtc.candidate", "visit_id": VID, "candidate": {"candidate": "c" * 1025}},
     "candidate"),
    (m.KIOSK_TO_CENTRAL, {"type": "rtc.candidate", "visit_id": VID, "candidate": {"sdpMLineIndex": 65}},
     "sdpMLineIndex"),
    (m.STAFF_TO_CENTRAL, {"type": "visit.message", "visit_id": VID, "text": "x" * 281}, "text"),
    (m.STAFF_TO_CENTRAL, {"type": "visit.message", "visit_id": VID, "text": "   "}, "text"),
    (m.STAFF_TO_CENTRAL, {"type": "presence.set", "status": "in_call"}, "status"),  # central sets that one
    # a lone surrogate in a string field
    (m.KIOSK_TO_CENTRAL, '{"type": "rtc.offer", "visit_id": "' + VID + '", "sdp": "v=0 \\udc00 0123456789"}', "sdp"),
]


@pytest.mark.parametrize(("direction", "message", "field"), INVALID_FIELDS,
                         ids=[f"{i}-{f}" for i, (_, _, f) in enumerate(INVALID_FIELDS)])
def test_missing_extra_mistyped_or_out_of_limit_fields_are_invalid_field(direction, message, field):
    frame = message if isinstance(message, str) else json.dumps(message)
    err = refused(frame, direction)
    assert err.code is ErrorCode.INVALID_FIELD
    assert field in err.detail and err.ref == json.loads(frame)["type"]
    json.loads(error_frame(err))  # the error itself is always sendable


def test_limits_are_inclusive():
    decode(frame_of(type="rtc.offer", visit_id=VID, sdp="x" * 32_000), m.KIOSK_TO_CENTRAL)
    decode(frame_of(type="visit.message", visit_id=VID, text="x" * 280), m.STAFF_TO_CENTRAL)
    decode(frame_of(type="visit.request", department="b" * 40), m.KIOSK_TO_CENTRAL)
    decode(frame_of(type="visit.cancel", visit_id="a" * 16), m.KIOSK_TO_CENTRAL)
    decode(frame_of(type="visit.cancel", visit_id="a" * 64), m.KIOSK_TO_CENTRAL)


def test_error_frames_are_valid_messages_and_detail_is_capped():
    err = ProtocolError(ErrorCode.INVALID_FIELD, "x" * 5000, ref="visit.request")
    frame = error_frame(err)
    for direction in (m.CENTRAL_TO_KIOSK, m.CENTRAL_TO_STAFF):
        msg = decode(frame, direction)
        assert (msg.code, len(msg.detail), msg.ref) == ("invalid_field", 500, "visit.request")


# -- whatever arrives: a message or a ProtocolError with a decode code, nothing else --------------------------

# Strings may hold lone surrogates: valid JSON ("\\ud800"), but not encodable as UTF-8.
TEXT = st.text(st.characters() | st.characters(categories=["Cs"]), max_size=30)
JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | TEXT,
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
                    max_leaves=20)
TYPES = sorted({t for d in DIRECTIONS.values() for t in d})
FIELDS = sorted({f for d in DIRECTIONS.values() for cls in d.values() for f in cls.model_fields} - {"type"})


def _decodes_or_refuses(frame: str | bytes) -> None:
    for direction in DIRECTIONS.values():
        try:
            msg = decode(frame, direction)
        except ProtocolError as err:
            assert err.code in DECODE_CODES
            json.loads(error_frame(err))
        else:
            assert decode(encode(msg), direction) == msg


@settings(max_examples=300, deadline=None)
@given(st.text() | st.binary())
def test_arbitrary_frames_are_decoded_or_refused_with_a_code(frame):
    _decodes_or_refuses(frame)


@settings(max_examples=300, deadline=None)
@given(st.fixed_dictionaries({"type": st.sampled_from(TYPES) | TEXT},
                             optional={"v": st.sampled_from([1, 2, "1"]) | JSON})
       .flatmap(lambda head: st.dictionaries(st.sampled_from(FIELDS) | TEXT, JSON, max_size=5)
                .map(lambda rest: {**rest, **head})))
def test_plausible_messages_are_decoded_or_refused_with_a_code(message):
    _decodes_or_refuses(json.dumps(message))


@pytest.mark.parametrize("index", ["0", True, 0.0])
def test_numbers_are_not_coerced_from_other_types(index):
    frame = json.dumps({"type": "rtc.candidate", "visit_id": "a" * 24,
                        "candidate": {"candidate": "candidate:1 1 udp 1 127.0.0.2 9 typ host", "sdpMLineIndex": index}})
    with pytest.raises(ProtocolError) as err:
        decode(frame, m.KIOSK_TO_CENTRAL)
    assert err.value.code is ErrorCode.INVALID_FIELD
