"""The guest's WebSocket (``/ws/guest``): an interpreter or colleague in a browser, by a one-time link.

The link the clerk hands out is ``{central}/guest#<secret>``; the secret stays in the fragment, so it is
never sent in an HTTP request (no log, no Referer). The page opens ``/ws/guest`` and says `guest.hello`
with it. From then on the socket belongs to that one guest of that one call:

1. `guest.hello` → `guest.welcome` (or `guest.refused`, and the socket closes);
2. the guest checks camera and microphone, then `guest.ready`: the clerk sees them waiting;
3. the clerk admits them: `guest.admitted`, then one `call.participant_joined` per participant (each
   with `offer` false except towards guests admitted later); the others offer, the guest answers;
4. it ends with `guest.removed` (by the clerk), `visit.ended` or `call.failed` (the call is over), or the
   guest's own `guest.leave`. The link never works again.

A lost connection (the guest's network, or a change of central's leader: close code 1012) does not end the
guest's part at once: `guest.welcome` carried a `rejoin` key, and a new socket that says `guest.rejoin` with it
within the resume grace is the same guest again, in the same step (`guest.welcome` with a new key, then, in the
call, `guest.admitted` and the participants; each pair with the guest starts afresh: both ends get
`call.participant_left`, then `call.participant_joined`). A key works once; it and the guest are forgotten when
the guest's part or the call is over.

The `rtc.*` messages follow protocol/participants.py: `peer` names the other end of the pair.
"""
from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from protocol import messages as m
from protocol.base import IceServer, Label, Language, Message, PeerId, VisitId
from protocol.participants import GuestRole, ParticipantJoined, ParticipantLeft

# The link's secret: 32 URL-safe characters from central (192 random bits).
LinkSecret = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{22,64}$"),
                       Field(description="The part of the link after `#`.")]


# -- guest -> central ------------------------------------------------------------

class GuestHello(Message):
    """First message: the link's secret. Answered with `guest.welcome` or `guest.refused`."""
    type: Literal["guest.hello"]
    link: LinkSecret
    language: Language = Field("de", description="The guest page's language.")


class GuestRejoin(Message):
    """First message of a new socket after a lost one: the `rejoin` key of the last `guest.welcome`. Answered
    with `guest.welcome` (and, in the call, `guest.admitted` and the participants), or `guest.refused`
    `call_over`."""
    type: Literal["guest.rejoin"]
    key: LinkSecret
    language: Language = Field("de", description="The guest page's language.")


class GuestReady(Message):
    """Camera and microphone are checked: wait for the clerk to admit me."""
    type: Literal["guest.ready"]
    visit_id: VisitId


class GuestLeave(Message):
    """The guest leaves (before or during the call). The link is used up; the socket closes."""
    type: Literal["guest.leave"]
    visit_id: VisitId


# -- central -> guest ------------------------------------------------------------

class GuestWelcome(Message):
    """The link is valid: this socket is the guest `peer` of the call `visit_id`."""
    type: Literal["guest.welcome"]
    visit_id: VisitId
    peer: PeerId = Field(description="The guest's own id in the call.")
    role: GuestRole
    label: Label
    department: Label = Field(description="The department's display name, e.g. `Bürgerbüro`.")
    ice_servers: list[IceServer] = Field(description="The city's STUN/TURN servers; may be empty. Use exactly these.")
    rejoin: LinkSecret | None = Field(None, description="Keep it in memory: after a lost connection, say it in "
                                                        "`guest.rejoin` on a new socket. Valid once, during this call.")
    rejoin_within_s: float | None = Field(None, description="How long central waits for the guest to come back "
                                                            "after a lost connection (the resume grace).")


class GuestRefused(Message):
    """The link does not (or no longer) open a call: unknown, revoked, already used, or its call is over. Which
    of these is not said. The socket closes; ask the clerk for a new link."""
    type: Literal["guest.refused"]
    reason: Literal["invalid_link", "call_over"] = Field(description="`invalid_link` for `guest.hello`; `call_over` "
                                                                     "for `guest.rejoin`: the call ended, or the "
                                                                     "guest's part in it, while they were away.")


class GuestAdmitted(Message):
    """The clerk let the guest in; `call.participant_joined` follows, one per participant."""
    type: Literal["guest.admitted"]
    visit_id: VisitId


class GuestRemoved(Message):
    """The clerk removed the guest (or revoked the link while they waited). The socket closes."""
    type: Literal["guest.removed"]
    visit_id: VisitId


GUEST_TO_CENTRAL = m._by_type(GuestHello, GuestRejoin, GuestReady, GuestLeave, m.RtcOffer, m.RtcAnswer, m.RtcCandidate,
                              m.RtcState, m.Ping)
CENTRAL_TO_GUEST = m._by_type(GuestWelcome, GuestRefused, GuestAdmitted, GuestRemoved, ParticipantJoined,
                              ParticipantLeft, m.RtcOffer, m.RtcAnswer, m.RtcCandidate, m.VisitEnded, m.CallFailed,
                              m.Error, m.Pong)
