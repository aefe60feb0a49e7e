"""Calls with more than two participants: an interpreter or a colleague joins by a one-time link.

The call stays a mesh of two-party peer connections (docs/decisions/, three-way calls). Every
participant has a `PeerId`: `citizen` (the kiosk or the browser at home), `clerk`, or a guest's id
given by central. When someone joins, central tells each other participant with
`call.participant_joined`; `offer` says which side of each new pair sends the `rtc.offer`
(the citizen's side always offers, as in a two-party call; the clerk offers to guests). The
`rtc.*` messages of such a pair carry `peer`: to central the addressee, from central the sender.
"""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from protocol.base import Label, Message, PeerId, VisitId

# What a participant is in the call, for the label on their tile.
Role = Literal["citizen", "clerk", "interpreter", "colleague"]


class ParticipantJoined(Message):
    """Someone joined the call: open a peer connection with them (or expect their offer)."""
    type: Literal["call.participant_joined"]
    visit_id: VisitId
    peer: PeerId
    role: Role
    label: Label = Field(description="What to show on their tile, e.g. `Dolmetscherin` or the clerk's name.")
    offer: bool = Field(description="True: you send the `rtc.offer` for this pair; false: wait for theirs.")


class ParticipantLeft(Message):
    """Someone left the call or was removed: close the peer connection with them; the call goes on."""
    type: Literal["call.participant_left"]
    visit_id: VisitId
    peer: PeerId


# -- a guest (interpreter, colleague) by one-time link: the clerk's side ------------------------------

GuestRole = Literal["interpreter", "colleague"]
# invited: the link is not used yet; joining: the guest opened it and checks camera and microphone;
# waiting: ready, waits for `guest.admit`; in_call: admitted; gone: revoked, removed, left or lost.
GuestState = Literal["invited", "joining", "waiting", "in_call", "gone"]


class GuestInvite(Message):
    """The clerk wants a third person in the call: central makes a one-time link, answered with `guest.status`
    (`invited`, with `link`). At most two guests per call; `rate_limited` beyond a few invitations a minute."""
    type: Literal["guest.invite"]
    visit_id: VisitId
    role: GuestRole = Field(description="`interpreter` (spoken or sign language) or `colleague`.")
    label: Label = Field("", description="Shown on the guest's tile to everyone, e.g. `Dolmetscherin Türkisch`; "
                                         "may be empty (then the role is shown).")


class GuestAdmit(Message):
    """Let a waiting guest into the call. Everyone gets `call.participant_joined`."""
    type: Literal["guest.admit"]
    visit_id: VisitId
    peer: PeerId = Field(description="The guest's id from `guest.status`.")


class GuestRemove(Message):
    """Revoke a guest's link, or remove the guest from the call (the call goes on). Answered with
    `guest.status` `gone`; the others get `call.participant_left` if the guest was in the call."""
    type: Literal["guest.remove"]
    visit_id: VisitId
    peer: PeerId


class GuestStatus(Message):
    """Where a guest of the clerk's call stands; sent on every change, and again after a reconnect."""
    type: Literal["guest.status"]
    visit_id: VisitId
    peer: PeerId
    role: GuestRole
    label: Label
    state: GuestState
    link: str | None = Field(None, description="While `invited`: the link's path on central, e.g. "
                                               "`/guest#<secret>`; put central's address before it and hand it "
                                               "to the guest. Valid for this call only, once.")
    reason: Literal["revoked", "removed", "left", "lost"] | None = Field(
        None, description="With `gone`: `revoked` (link withdrawn before it was used), `removed` (by the clerk), "
                          "`left` (the guest left), `lost` (the guest's connection broke and they did not "
                          "come back).")
    away: bool = Field(False, description="The guest's connection broke (`joining`, `waiting` or `in_call`): central "
                                          "waits for them to come back for the resume grace, then they are `gone` "
                                          "`lost`.")


# Guest messages on the clerk's console socket (protocol.messages adds them to its directions).
FROM_STAFF = (GuestInvite, GuestAdmit, GuestRemove)
TO_STAFF = (GuestStatus,)
