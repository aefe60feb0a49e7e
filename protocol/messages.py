"""Every message of the kiosk and staff-console WebSockets, defined once.

A message is a JSON object ``{"v": 1, "type": "<name>", ...fields}``. Each class
below is one ``type``; its fields carry their own limits, and unknown fields are
refused, so a typo is an error instead of a silently ignored value. The staff
console's own messages are in protocol/console.py; this module names them too.

Directions are explicit (:data:`KIOSK_TO_CENTRAL` etc.): a kiosk cannot send a
message that only a clerk may send, however well-formed it is.
"""
from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from protocol import booking_lookup, fleet, participants, updates
from protocol.base import (  # noqa: F401  (re-exported: protocol.messages names them all)
    BookingCode,
    Candidate,
    DepartmentInfo,
    EndReason,
    IceServer,
    Label,
    Language,
    Message,
    Origin,
    PeerId,
    Position,
    Presence,
    ResumeToken,
    Sdp,
    Seconds,
    ShortText,
    Slug,
    VisitId,
)
from protocol.console import (  # noqa: F401  (re-exported, as above)
    CallAssigned,
    CallRestart,
    ConsoleSnapshot,
    DepartmentQueue,
    PresenceChanged,
    PresenceSet,
    QueueJoined,
    QueueLeft,
    VisitMessage,
    VisitPickup,
    VisitTransfer,
    WaitingVisit,
)

# -- kiosk -> central ----------------------------------------------------------

class VisitRequest(Message):
    """The citizen chose a department; put them in its waiting room."""
    type: Literal["visit.request"]
    department: Slug = Field(description="The `slug` of one of the departments in `welcome`.")
    language: Language = Field("de", description="The citizen's language (BCP 47, e.g. `de`, `tr`, `pt-BR`).")
    booking: BookingCode | None = Field(
        None, description="The code of the citizen's booked appointment in this department, if they have one: "
                          "within its slot they go ahead of walk-in visitors. Refused with `booking_unknown` or "
                          "`booking_other_time`.")


class VisitResume(Message):
    """After a reconnect: take my place back.

    Answered with `visit.resumed`, or `error` `not_your_visit` when the visit has ended or the token is invalid
    (then start a new visit).
    """
    type: Literal["visit.resume"]
    visit_id: VisitId
    resume_token: ResumeToken = Field(description="The latest token central sent for this visit.")


class VisitCancel(Message):
    """The citizen leaves the waiting room. Answered with `visit.ended` (`cancelled`)."""
    type: Literal["visit.cancel"]
    visit_id: VisitId


class VisitHangup(Message):
    """Either side ends the call. Both sides get `visit.ended`."""
    type: Literal["visit.hangup"]
    visit_id: VisitId
    reason: Literal["device_failed"] | None = Field(
        None, description="From the kiosk only: `device_failed` when its microphone failed and the call cannot "
                          "go on (both sides then get `visit.ended` `device_failed`). Leave out otherwise.")


class RtcOffer(Message):
    """The kiosk's SDP offer, after `call.start`; central relays it to the clerk."""
    type: Literal["rtc.offer"]
    visit_id: VisitId
    peer: PeerId | None = Field(
        None, description="In a call with more than two participants: the other end of this peer connection. "
                          "Leave out for the connection between citizen and clerk.")
    sdp: Sdp = Field(description="The session description (RTCSessionDescription.sdp).")


class RtcAnswer(Message):
    """The clerk's SDP answer to the kiosk's offer; central relays it to the kiosk."""
    type: Literal["rtc.answer"]
    visit_id: VisitId
    peer: PeerId | None = Field(
        None, description="In a call with more than two participants: the other end of this peer connection. "
                          "Leave out for the connection between citizen and clerk.")
    sdp: Sdp = Field(description="The session description (RTCSessionDescription.sdp).")


class RtcCandidate(Message):
    """One trickled ICE candidate of the sender's peer connection; central relays it to the other side."""
    type: Literal["rtc.candidate"]
    visit_id: VisitId
    peer: PeerId | None = Field(
        None, description="In a call with more than two participants: the other end of this peer connection. "
                          "Leave out for the connection between citizen and clerk.")
    candidate: Candidate


class RtcState(Message):
    """How this side's peer connection fared: ``connected`` once media flows, ``failed`` when ICE gave up.

    Sent by kiosk and console alike; central ends the wait for media on ``connected``
    and puts the visit back at the head of its queue on ``failed`` (see call.failed).
    """
    type: Literal["rtc.state"]
    visit_id: VisitId
    peer: PeerId | None = Field(
        None, description="In a call with more than two participants: the other end of this peer connection. "
                          "Leave out for the connection between citizen and clerk.")
    state: Literal["connected", "failed"] = Field(
        description="`connected`: the peer connection's connectionState became connected; `failed`: it became "
                    "failed, or the sender gave up waiting for it.")


class Ping(Message):
    """Keep-alive; answered with `pong`."""
    type: Literal["ping"]


# -- central -> kiosk ----------------------------------------------------------

class Welcome(Message):
    """First message on a kiosk's connection: where it stands and which departments it offers."""
    type: Literal["welcome"]
    kiosk_location: Label = Field(description="The kiosk's location as set by the admin, e.g. `Rathaus Musterdorf`.")
    ice_servers: list[IceServer] = Field(description="The city's STUN/TURN servers; may be empty. Use exactly these.")
    departments: list[DepartmentInfo]


class VisitQueued(Message):
    """Answer to `visit.request`: the citizen waits in the department's waiting room."""
    type: Literal["visit.queued"]
    visit_id: VisitId
    resume_token: ResumeToken = Field(description="Keep in memory (never on disk); send with `visit.resume` after "
                                                  "a reconnect. Replaced by the token of each later message.")
    department: Slug
    position: Position = Field(description="Place in the waiting room; 1 = next.")
    expected_wait_s: Seconds = Field(description="Estimated wait in seconds.")


class VisitPosition(Message):
    """The waiting citizen's place changed (someone ahead left or was picked up)."""
    type: Literal["visit.position"]
    visit_id: VisitId
    department: Slug
    position: Position
    expected_wait_s: Seconds


class VisitTransferred(Message):
    """The clerk moved the visit to another department; the call, if any, is over and the wait resumes."""
    type: Literal["visit.transferred"]
    visit_id: VisitId
    department: Slug
    position: Position
    expected_wait_s: Seconds
    resume_token: ResumeToken


class VisitResumed(Message):
    """Answer to `visit.resume`: the place was kept. Position fields only while waiting."""
    type: Literal["visit.resumed"]
    visit_id: VisitId
    department: Slug
    state: Literal["waiting", "in_call"] = Field(
        description="`waiting`: still in the waiting room (see `position`); `in_call`: a clerk has the visit; "
                    "media may still flow peer to peer. `call.start` follows if the kiosk never had it.")
    position: Position | None = None
    expected_wait_s: Seconds | None = None
    resume_token: ResumeToken


class VisitRefused(Message):
    """Answer to `visit.request` when the citizen cannot wait there; shown to the citizen."""
    type: Literal["visit.refused"]
    department: Slug
    reason: Literal["closed", "unknown_department", "already_waiting", "booking_unknown", "booking_other_time",
                    "online_full"] = Field(
        description="`closed`: outside office hours; `unknown_department`: no such department; "
                    "`already_waiting`: this kiosk already has a visit waiting or in a call; `booking_unknown`: no "
                    "booking with this code in this department (or it was used or cancelled); `booking_other_time`: "
                    "the booking is for another day or hour (shown with its time); `online_full`: (visits from "
                    "home) the department has as many visitors from home as it takes now; try again later.")
    next_opening: str | None = Field(None, description="With `closed`: the next opening, ISO 8601 with offset.")
    booked_for: str | None = Field(None, description="With `booking_other_time`: the slot's start, ISO 8601 with offset.")


class VisitMessageToKiosk(Message):
    """A clerk's short text for the waiting citizen."""
    type: Literal["visit.message"]
    visit_id: VisitId
    text: ShortText = Field(description="Show it to the citizen as it is (plain text, not HTML).")


class CallStart(Message):
    """A clerk picked the visit up: the kiosk now sends its `rtc.offer`."""
    type: Literal["call.start"]
    visit_id: VisitId
    ice_servers: list[IceServer] = Field(description="The city's STUN/TURN servers for this call; may be empty.")
    resume_token: ResumeToken = Field(description="Replaces the previous token: the visit is now in a call.")


class CallFailed(Message):
    """The call's media did not connect in time (or ICE failed on a side): the call is over.

    The citizen keeps their place: the visit waits again at the head of its queue.
    To the kiosk the new place and resume token come along; to the console they are absent.
    """
    type: Literal["call.failed"]
    visit_id: VisitId
    reason: Literal["media_timeout", "ice_failed"] = Field(
        description="`media_timeout`: the kiosk did not report `rtc.state` `connected` within central's "
                    "`call_connect_timeout_s` (default 30 s) after the pick-up; `ice_failed`: a side reported "
                    "`rtc.state` `failed`.")
    position: Position | None = Field(None, description="To the kiosk: its place again (1 = next).")
    expected_wait_s: Seconds | None = None
    resume_token: ResumeToken | None = Field(None, description="To the kiosk: the new token (the visit waits).")


class VisitEnded(Message):
    """The visit is over and deleted; forget its id and token."""
    type: Literal["visit.ended"]
    visit_id: VisitId
    reason: EndReason = Field(
        description="`hangup_kiosk`: the citizen hung up; `hangup_staff`: the clerk hung up; `cancelled`: the "
                    "citizen left the waiting room; `kiosk_lost`: the kiosk did not come back within the resume "
                    "grace (or came back without resuming); `staff_lost`: the clerk's console did not come back; "
                    "`transferred`: (to the clerk) the visit went to another department; `device_failed`: the kiosk's "
                    "microphone failed during the call.")


class Error(Message):
    """A message was refused; it changed nothing. See the error codes below."""
    type: Literal["error"]
    code: str = Field(description="One of the error codes below.")
    detail: Annotated[str, StringConstraints(max_length=500)] = Field(
        description="English, for a developer's log; not for citizens.")
    ref: str | None = Field(None, description="The refused message's `type`, if it could be read.")
    retry_after_s: Seconds | None = Field(
        None, description="With `rate_limited`: the same message is accepted again after this many seconds.")


class Pong(Message):
    """Answer to `ping`."""
    type: Literal["pong"]


# -- directions ----------------------------------------------------------------

def _by_type(*classes: type[Message]) -> dict[str, type[Message]]:
    return {cls.model_fields["type"].annotation.__args__[0]: cls for cls in classes}


KIOSK_TO_CENTRAL = _by_type(VisitRequest, VisitResume, VisitCancel, VisitHangup, RtcOffer, RtcCandidate, RtcState,
                            Ping, fleet.KioskHealth, fleet.SettingsApplied, fleet.SelftestReport,
                            fleet.ActionResult, fleet.DeviceFault, updates.UpdateStatus, booking_lookup.BookingLookup)
STAFF_TO_CENTRAL = _by_type(PresenceSet, VisitPickup, VisitTransfer, VisitMessage, VisitHangup, RtcOffer, RtcAnswer,
                            RtcCandidate, RtcState, CallRestart, Ping, *participants.FROM_STAFF)
CENTRAL_TO_KIOSK = _by_type(Welcome, VisitQueued, VisitPosition, VisitTransferred, VisitResumed, VisitRefused,
                            VisitMessageToKiosk, CallStart, CallFailed, RtcAnswer, RtcCandidate, VisitEnded, Error,
                            Pong, fleet.SettingsMessage, fleet.KioskAction, updates.UpdateOffer,
                            updates.UpdateWithdraw, participants.ParticipantJoined, participants.ParticipantLeft,
                            booking_lookup.BookingFound)
CENTRAL_TO_STAFF = _by_type(ConsoleSnapshot, QueueJoined, QueueLeft, CallAssigned, CallFailed, PresenceChanged,
                            RtcOffer, RtcAnswer, RtcCandidate, VisitEnded, Error, Pong, fleet.CallNotice,
                            participants.ParticipantJoined, participants.ParticipantLeft, *participants.TO_STAFF)
# A unit without a token, on /ws/enrol: it can only say who it is and wait to be claimed.
ENROL_TO_CENTRAL = _by_type(fleet.EnrolHello, Ping)
CENTRAL_TO_ENROL = _by_type(fleet.EnrolCodeOffer, fleet.EnrolDone, Error, Pong)
