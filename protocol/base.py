"""What every message is built from: the envelope, the field types and the small shared objects.

Kept apart from the message lists (protocol/messages.py for visits and calls, protocol/console.py for
the staff console, protocol/fleet.py for enrolment, health and settings) so that all import the same
definitions.
"""
from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

# -- field types -------------------------------------------------------------

VisitId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{16,64}$"),
                    Field(description="The visit's id, given by central (`visit.queued`, `WaitingVisit`).")]
Slug = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,39}$"),
                 Field(description="A department's slug, e.g. `buergerbuero`.")]
Language = Annotated[str, StringConstraints(pattern=r"^[a-z]{2,3}(-[A-Za-z]{2,4})?$")]
Sdp = Annotated[str, StringConstraints(min_length=10, max_length=32_000)]
# A visit's place, signed by central and held only by the kiosk (signature.payload,
# base64url; docs/decisions/0005): it lets central put the visit back after a restart without keeping
# anything about visits on disk. Opaque to the kiosk.
ResumeToken = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{16,64}(\.[A-Za-z0-9_-]{16,900})?$"),
                        Field(description="The visit's current resume token (opaque); keep only the latest, in "
                                          "memory.")]
ShortText = Annotated[str, StringConstraints(min_length=1, max_length=280, strip_whitespace=True)]
Label = Annotated[str, StringConstraints(max_length=120)]
Seconds = Annotated[int, Field(ge=0, le=7 * 24 * 3600, description="Estimated wait in seconds.")]
Position = Annotated[int, Field(ge=1, le=100_000, description="Place in the waiting room, counted from 1 (1 = next).")]
EndReason = Literal["hangup_kiosk", "hangup_staff", "cancelled", "kiosk_lost", "staff_lost", "transferred",
                    "device_failed"]
Presence = Literal["available", "in_call", "away"]
# Where a citizen comes in: a kiosk (its location names it) or a browser at home ("online").
Origin = Literal["kiosk", "online"]
# One participant of a call, as the others address it: "citizen", "clerk", or a guest's id given by central.
PeerId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{4,40}$"),
                   Field(description="A participant of the call: `citizen`, `clerk` or a guest's id from central.")]
# A booked appointment's code: 8 characters of Crockford's base32 (no I, L, O, U), upper case. Citizens may
# type it with a dash after the fourth character and in lower case; normalise before sending.
BookingCode = Annotated[str, StringConstraints(pattern=r"^[0-9A-HJKMNP-TV-Z]{8}$"),
                        Field(description="A booking's code, e.g. `7K3M9QX2` (shown as `7K3M-9QX2`).")]


class Message(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)
    v: Literal[1] = Field(1, description="Protocol version. May be left out (means 1); if present it must be the "
                                         "JSON integer 1 (not `1.0`, not `\"1\"`), else `unsupported_version`.")


class IceServer(BaseModel):
    """One entry of RTCConfiguration.iceServers, as configured by the city."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)
    urls: list[Annotated[str, StringConstraints(pattern=r"^(stun|stuns|turn|turns):", max_length=200)]] = Field(
        description="STUN/TURN URLs, each at most 200 characters.")
    username: Label | None = Field(None, description="For TURN: the (time-limited) user name.")
    credential: Label | None = Field(None, description="For TURN: the password belonging to `username`.")


class Candidate(BaseModel):
    """A trickled ICE candidate, as the browser's RTCIceCandidate names its parts.

    ``candidate`` null or ``""`` means end of candidates (nothing to add).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)
    candidate: Annotated[str, StringConstraints(max_length=1024)] | None = Field(
        None, description="The `candidate:…` line without `a=`, e.g. `candidate:1 1 udp 2122260223 192.168.1.20 "
                          "50000 typ host`; null or empty = end of candidates.")
    sdpMid: Annotated[str, StringConstraints(max_length=64)] | None = Field(
        None, description="The media section's `a=mid` the candidate belongs to.")
    sdpMLineIndex: Annotated[int, Field(ge=0, le=64)] | None = Field(
        None, description="The index of that media section in the SDP, counted from 0.")


class DepartmentInfo(BaseModel):
    """A department a kiosk may send citizens to, or a clerk may transfer to."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)
    slug: Slug = Field(description="Identifies the department in every message.")
    name: Label = Field(description="Display name, e.g. `Bürgerbüro`.")
    open: bool = Field(description="Within office hours now.")
    next_opening: str | None = Field(None, description="When closed: the next opening, ISO 8601 with offset "
                                                       "(`2026-12-07T08:00:00+01:00`).")
    languages: list[Language] = Field([], description="Languages the department's staff speak, if configured.")
    bookable: bool = Field(False, description="Takes booked appointments: kiosks offer \"I have an appointment\".")

