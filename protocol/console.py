"""The staff console's messages (``/ws/staff``): what a clerk sends, and the waiting rooms and calls central shows them.

The console also speaks the call's messages shared with the kiosk (`rtc.*`, `visit.hangup`, `visit.ended`,
`call.failed`, …, protocol/messages.py) and the guest messages (protocol/participants.py);
:data:`protocol.messages.STAFF_TO_CENTRAL` and :data:`protocol.messages.CENTRAL_TO_STAFF` list them all.
"""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from protocol.base import (
    DepartmentInfo,
    IceServer,
    Label,
    Language,
    Message,
    Origin,
    Presence,
    ShortText,
    Slug,
    VisitId,
)

# -- staff console -> central --------------------------------------------------

class PresenceSet(Message):
    """The clerk sets their status. Answered with `presence.changed`; `wrong_state` during a call."""
    type: Literal["presence.set"]
    status: Literal["available", "away"] = Field(
        description="`available`: ready for citizens; `away`: not now. (`in_call` is set by central only.)")


class VisitPickup(Message):
    """Pick up a specific visit, or the longest-waiting one of a department.

    Answered with `call.assigned` and `presence.changed`, or an `error`.
    """
    type: Literal["visit.pickup"]
    visit_id: VisitId | None = Field(None, description="The visit to pick up; or leave it out and name `department`.")
    department: Slug | None = Field(None, description="Pick up whoever has waited longest in this department.")


class VisitTransfer(Message):
    """Move a waiting or in-call visit to another department, keeping its arrival time."""
    type: Literal["visit.transfer"]
    visit_id: VisitId
    department: Slug = Field(description="The target: one of `transfer_targets` in `console.snapshot`, open now.")


class CallRestart(Message):
    """The console lost the call's media (e.g. the page was reloaded): have the kiosk offer afresh."""
    type: Literal["call.restart"]
    visit_id: VisitId


class VisitMessage(Message):
    """A short text from the clerk shown on the waiting kiosk. No reply unless refused (`rate_limited`, …)."""
    type: Literal["visit.message"]
    visit_id: VisitId
    text: ShortText = Field(description="Surrounding white space is removed before the length is checked; at most "
                                        "10 texts per visit.")



# -- central -> staff console --------------------------------------------------

class WaitingVisit(BaseModel):
    """A visit as a clerk sees it: where the citizen is and since when they wait."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)
    visit_id: VisitId
    department: Slug = Field(description="The waiting room it is in now.")
    kiosk_location: Label = Field(description="Where the citizen is, e.g. `Rathaus Musterdorf`.")
    language: Language = Field(description="The citizen's language.")
    arrived_at: float = Field(description="Unix seconds (central's clock): arrival in the first waiting room, kept "
                                          "on transfer and after a failed call. Sort by it: earliest first.")
    origin: Origin = Field("kiosk", description="`kiosk`: at the kiosk named by `kiosk_location`; `online`: from a "
                                                "browser at home (`kiosk_location` is then empty).")
    slot_start: float | None = Field(None, description="With a booked appointment: the slot's start, Unix seconds. "
                                                        "Such a visit goes ahead of walk-ins during its slot.")


class DepartmentQueue(BaseModel):
    """One of the clerk's departments with its waiting room."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)
    slug: Slug
    name: Label = Field(description="Display name, e.g. `Bürgerbüro`.")
    open: bool = Field(description="Within office hours now.")
    waiting: list[WaitingVisit] = Field(description="Everyone waiting there (not those in a call).")


class ConsoleSnapshot(Message):
    """Sent once on connect: everything the console shows, afterwards kept up to date by events."""
    type: Literal["console.snapshot"]
    staff_name: Label = Field(description="The clerk's display name.")
    presence: Presence = Field(description="`available`, `away`, or `in_call` while the clerk has a call.")
    departments: list[DepartmentQueue] = Field(description="The departments this clerk serves.")
    transfer_targets: list[DepartmentInfo] = Field(description="Every department, for `visit.transfer`.")
    ice_servers: list[IceServer] = Field(description="The city's STUN/TURN servers; may be empty.")
    server_time: float = Field(description="Unix seconds, so the console can correct its \"waiting for\" clocks.")


class QueueJoined(Message):
    """A visit entered one of the clerk's waiting rooms."""
    type: Literal["queue.joined"]
    visit: WaitingVisit
    reason: Literal["arrived", "transferred", "call_failed", "restored"] = Field(
        "arrived", description="`arrived`: a new visit; `transferred`: moved here from another department; "
                               "`call_failed`: its call's media failed, it waits again at the head; `restored`: put "
                               "back after central restarted.")


class QueueLeft(Message):
    """A visit left one of the clerk's waiting rooms."""
    type: Literal["queue.left"]
    visit_id: VisitId
    department: Slug
    reason: Literal["picked_up", "cancelled", "transferred", "kiosk_lost", "closed"] = Field(
        description="`picked_up`: a clerk took it; `cancelled`: the citizen left; `transferred`: moved to another "
                    "department; `kiosk_lost`: its kiosk did not come back; `closed`: the department closed.")


class CallAssigned(Message):
    """To the clerk who picked the visit up: open the call view and await the kiosk's offer."""
    type: Literal["call.assigned"]
    visit: WaitingVisit
    ice_servers: list[IceServer] = Field(description="The city's STUN/TURN servers for this call; may be empty.")
    resumed: bool = Field(False, description="True when the clerk already had this call (console or central "
                                             "reconnected): keep a live peer connection; without one, send "
                                             "`call.restart`.")


class PresenceChanged(Message):
    """The clerk's status changed (by `presence.set`, a pick-up or the end of a call)."""
    type: Literal["presence.changed"]
    presence: Presence = Field(description="`available`, `away`, or `in_call` while the clerk has a call.")

