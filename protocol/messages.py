"""Every message of the kiosk and staff-console WebSockets, defined once.

A message is a JSON object ``{"v": 1, "type": "<name>", ...fields}``. Each class
below is one ``type``; its fields carry their own limits, and unknown fields are
refused, so a typo is an error instead of a silently ignored value.

Directions are explicit (:data:`KIOSK_TO_CENTRAL` etc.): a kiosk cannot send a
message that only a clerk may send, however well-formed it is.
"""
from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

# -- field types -------------------------------------------------------------

VisitId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{16,64}$")]
Slug = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,39}$")]
Language = Annotated[str, StringConstraints(pattern=r"^[a-z]{2,3}(-[A-Za-z]{2,4})?$")]
Sdp = Annotated[str, StringConstraints(min_length=10, max_length=32_000)]
# A visit's place, signed by central and held only by the kiosk (payload.signature,
# base64url): it lets central put the visit back after a restart without keeping
# anything about visits on disk. Opaque to the kiosk.
ResumeToken = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{16,64}(\.[A-Za-z0-9_-]{16,900})?$")]
ShortText = Annotated[str, StringConstraints(min_length=1, max_length=280, strip_whitespace=True)]
Label = Annotated[str, StringConstraints(max_length=120)]
Seconds = Annotated[int, Field(ge=0, le=7 * 24 * 3600)]
Position = Annotated[int, Field(ge=1, le=100_000)]
EndReason = Literal["hangup_kiosk", "hangup_staff", "cancelled", "kiosk_lost", "staff_lost", "transferred"]
Presence = Literal["available", "in_call", "away"]


class Message(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)
    v: Literal[1] = 1


class IceServer(BaseModel):
    """One entry of RTCConfiguration.iceServers, as configured by the city."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)
    urls: list[Annotated[str, StringConstraints(pattern=r"^(stun|stuns|turn|turns):", max_length=200)]]
    username: Label | None = None
    credential: Label | None = None


class Candidate(BaseModel):
    """A trickled ICE candidate; ``candidate=None`` or ``""`` means end of candidates."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)
    candidate: Annotated[str, StringConstraints(max_length=1024)] | None = None
    sdpMid: Annotated[str, StringConstraints(max_length=64)] | None = None
    sdpMLineIndex: Annotated[int, Field(ge=0, le=64)] | None = None


# -- kiosk -> central ----------------------------------------------------------

class VisitRequest(Message):
    """The citizen chose a department; put them in its waiting room."""
    type: Literal["visit.request"]
    department: Slug
    language: Language = "de"


class VisitResume(Message):
    """After a reconnect: take my place back (resume_token from visit.queued)."""
    type: Literal["visit.resume"]
    visit_id: VisitId
    resume_token: ResumeToken


class VisitCancel(Message):
    type: Literal["visit.cancel"]
    visit_id: VisitId


class VisitHangup(Message):
    """Either side ends the call."""
    type: Literal["visit.hangup"]
    visit_id: VisitId


class RtcOffer(Message):
    type: Literal["rtc.offer"]
    visit_id: VisitId
    sdp: Sdp


class RtcAnswer(Message):
    type: Literal["rtc.answer"]
    visit_id: VisitId
    sdp: Sdp


class RtcCandidate(Message):
    type: Literal["rtc.candidate"]
    visit_id: VisitId
    candidate: Candidate


class RtcState(Message):
    """How this side's peer connection fared: ``connected`` once media flows, ``failed`` when ICE gave up.

    Sent by kiosk and console alike; central ends the wait for media on ``connected``
    and puts the visit back at the head of its queue on ``failed`` (see call.failed).
    """
    type: Literal["rtc.state"]
    visit_id: VisitId
    state: Literal["connected", "failed"]


class Ping(Message):
    type: Literal["ping"]


# -- staff console -> central --------------------------------------------------

class PresenceSet(Message):
    type: Literal["presence.set"]
    status: Literal["available", "away"]


class VisitPickup(Message):
    """Pick up a specific visit, or the longest-waiting one of a department."""
    type: Literal["visit.pickup"]
    visit_id: VisitId | None = None
    department: Slug | None = None


class VisitTransfer(Message):
    """Move a waiting or in-call visit to another department, keeping its arrival time."""
    type: Literal["visit.transfer"]
    visit_id: VisitId
    department: Slug


class CallRestart(Message):
    """The console lost the call's media (e.g. the page was reloaded): have the kiosk offer afresh."""
    type: Literal["call.restart"]
    visit_id: VisitId


class VisitMessage(Message):
    """A short text from the clerk shown on the waiting kiosk."""
    type: Literal["visit.message"]
    visit_id: VisitId
    text: ShortText


# -- central -> kiosk ----------------------------------------------------------

class DepartmentInfo(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)
    slug: Slug
    name: Label
    open: bool
    next_opening: str | None = None  # ISO 8601 with offset
    languages: list[Language] = []


class Welcome(Message):
    type: Literal["welcome"]
    kiosk_location: Label
    ice_servers: list[IceServer]
    departments: list[DepartmentInfo]


class VisitQueued(Message):
    type: Literal["visit.queued"]
    visit_id: VisitId
    resume_token: ResumeToken
    department: Slug
    position: Position
    expected_wait_s: Seconds


class VisitPosition(Message):
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
    """Answer to visit.resume: the place was kept. Position fields only while waiting."""
    type: Literal["visit.resumed"]
    visit_id: VisitId
    department: Slug
    state: Literal["waiting", "in_call"]
    position: Position | None = None
    expected_wait_s: Seconds | None = None
    resume_token: ResumeToken


class VisitRefused(Message):
    type: Literal["visit.refused"]
    department: Slug
    reason: Literal["closed", "unknown_department", "already_waiting"]
    next_opening: str | None = None


class VisitMessageToKiosk(Message):
    type: Literal["visit.message"]
    visit_id: VisitId
    text: ShortText


class CallStart(Message):
    """A clerk picked the visit up: the kiosk now sends its rtc.offer."""
    type: Literal["call.start"]
    visit_id: VisitId
    ice_servers: list[IceServer]
    resume_token: ResumeToken  # replaces the one from visit.queued: the visit is now in a call


class CallFailed(Message):
    """The call's media did not connect in time (or ICE failed on a side): the call is over.

    The citizen keeps their place: the visit waits again at the head of its queue.
    To the kiosk the new place and resume token come along; to the console they are absent.
    """
    type: Literal["call.failed"]
    visit_id: VisitId
    reason: Literal["media_timeout", "ice_failed"]
    position: Position | None = None
    expected_wait_s: Seconds | None = None
    resume_token: ResumeToken | None = None


class VisitEnded(Message):
    type: Literal["visit.ended"]
    visit_id: VisitId
    reason: EndReason


class Error(Message):
    type: Literal["error"]
    code: str
    detail: Annotated[str, StringConstraints(max_length=500)]
    ref: str | None = None  # the offending message's type, if readable


class Pong(Message):
    type: Literal["pong"]


# -- central -> staff console --------------------------------------------------

class WaitingVisit(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)
    visit_id: VisitId
    department: Slug
    kiosk_location: Label
    language: Language
    arrived_at: float  # unix seconds; arrival in the first waiting room, kept on transfer


class DepartmentQueue(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)
    slug: Slug
    name: Label
    open: bool
    waiting: list[WaitingVisit]


class ConsoleSnapshot(Message):
    """Sent once on connect: everything the console shows, afterwards kept up to date by events."""
    type: Literal["console.snapshot"]
    staff_name: Label
    presence: Presence
    departments: list[DepartmentQueue]
    transfer_targets: list[DepartmentInfo]
    ice_servers: list[IceServer]
    server_time: float  # unix seconds, so the console can correct its "waiting for" clocks


class QueueJoined(Message):
    type: Literal["queue.joined"]
    visit: WaitingVisit
    reason: Literal["arrived", "transferred", "call_failed", "restored"] = "arrived"


class QueueLeft(Message):
    type: Literal["queue.left"]
    visit_id: VisitId
    department: Slug
    reason: Literal["picked_up", "cancelled", "transferred", "kiosk_lost", "closed"]


class CallAssigned(Message):
    """To the clerk who picked the visit up: open the call view and await the kiosk's offer."""
    type: Literal["call.assigned"]
    visit: WaitingVisit
    ice_servers: list[IceServer]
    # True when the clerk already had this call (console or central reconnected): keep a
    # live peer connection; without one, send call.restart.
    resumed: bool = False


class PresenceChanged(Message):
    type: Literal["presence.changed"]
    presence: Presence


# -- directions ----------------------------------------------------------------

def _by_type(*classes: type[Message]) -> dict[str, type[Message]]:
    return {cls.model_fields["type"].annotation.__args__[0]: cls for cls in classes}


KIOSK_TO_CENTRAL = _by_type(VisitRequest, VisitResume, VisitCancel, VisitHangup, RtcOffer, RtcCandidate, RtcState,
                            Ping)
STAFF_TO_CENTRAL = _by_type(PresenceSet, VisitPickup, VisitTransfer, VisitMessage, VisitHangup, RtcAnswer,
                            RtcCandidate, RtcState, CallRestart, Ping)
CENTRAL_TO_KIOSK = _by_type(Welcome, VisitQueued, VisitPosition, VisitTransferred, VisitResumed, VisitRefused,
                            VisitMessageToKiosk, CallStart, CallFailed, RtcAnswer, RtcCandidate, VisitEnded, Error,
                            Pong)
CENTRAL_TO_STAFF = _by_type(ConsoleSnapshot, QueueJoined, QueueLeft, CallAssigned, CallFailed, PresenceChanged,
                            RtcOffer, RtcCandidate, VisitEnded, Error, Pong)
