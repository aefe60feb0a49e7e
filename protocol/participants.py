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
