"""A guest whose connection broke comes back: the guest's network failed for a moment, or central's leader
changed (the sockets closed with 1012 and the page reconnects, through the load balancer, to whichever
central now takes it).

The guest is not dropped at once: they stay in the book, without a connection, for the resume grace. Their page
says `guest.rejoin` with the key of its last `guest.welcome` on a new socket and is the same guest again, in
the step they were in. In the call, each pair with them starts afresh (`call.participant_left`, then
`call.participant_joined`, which every client already handles): their peer connections may have broken with the
socket. A participant who is away at that moment (the citizen's kiosk or the clerk's
console reconnecting after the same change of leader) restarts its pair with the guest when it is back.

Nothing more is kept than before: the guest and the key go with the guest's part in the call, or with the call.
With several centrals the book is written through to Valkey (central/rooms/redis_guest_links.py), so the
next leader knows the guest and the key's digest (never the key).
"""
from __future__ import annotations

import asyncio
import logging

from central.live.guest_side import CITIZEN, CLERK, GuestSide
from central.live.link import Link
from central.live.peers import GuestPeer, StaffPeer
from central.rooms import Visit, VisitState
from central.rooms.guest_links import Guest
from protocol import guests as g
from protocol import messages as m
from protocol import participants as p
from protocol.codec import encode
from protocol.errors import ErrorCode, ProtocolError

log = logging.getLogger(__name__)


def _joined(link: Link, visit: Visit, peer: str, role: str, label: str, *, offer: bool, afresh: bool) -> None:
    """Tell ``link`` of participant ``peer``; ``afresh``: the pair with them starts anew, so first that they left
    (every client closes the pair then, and opens a new one on joined, even if the old one still seemed fine)."""
    if afresh:
        link.send(encode(p.ParticipantLeft(type="call.participant_left", visit_id=visit.id, peer=peer)))
    link.send(encode(p.ParticipantJoined(type="call.participant_joined", visit_id=visit.id, peer=peer, role=role,
                                         label=label, offer=offer)))


class GuestRejoins(GuestSide):
    def guest_disconnected(self, peer: GuestPeer) -> None:
        guest = peer.guest
        if guest is None or guest.state == "gone" or guest.link is not peer.link:
            return  # no link said yet, already out, or back on another connection meanwhile
        if self.rooms.get(guest.visit_id) is None:
            self.guest_links.remove(guest)
            return
        guest.link = None
        self._await_guest(guest)
        self._tell_clerk(guest)  # away for the moment

    def _await_guest(self, guest: Guest) -> None:
        """The guest has no connection: they are lost unless they come back within the resume grace."""
        self._cancel_guest_grace(guest)
        if self.stopping:
            return  # central is going down: the guest comes back to the next leader
        self._guest_grace[guest.peer] = asyncio.get_running_loop().call_later(
            self.resume_grace_s, self._guest_not_back, guest)

    def _guest_not_back(self, guest: Guest) -> None:
        self._guest_grace.pop(guest.peer, None)
        if guest.link is not None or guest.state == "gone":
            return
        visit = self.rooms.get(guest.visit_id)
        if visit is None:
            self.guest_links.remove(guest)
        else:
            self._drop_guest(visit, guest, "lost", None)

    def guest_message(self, peer: GuestPeer, msg: m.Message) -> None:
        if isinstance(msg, g.GuestRejoin):
            self._rejoin(peer, msg)
        else:
            super().guest_message(peer, msg)

    def _rejoin(self, peer: GuestPeer, msg: g.GuestRejoin) -> None:
        if peer.guest is not None:
            raise ProtocolError(ErrorCode.WRONG_STATE, "this connection already has its link")
        guest = self.guest_links.rejoin(msg.key)
        visit = self.rooms.get(guest.visit_id) if guest is not None else None
        if guest is None or visit is None or visit.state is not VisitState.IN_CALL or visit.clerk_id != guest.clerk_id:
            # The call ended, or the guest's part in it, while they were away: both look the same from outside.
            if guest is not None:
                self._cancel_guest_grace(guest)
                self.guest_links.remove(guest)
            peer.link.send(encode(g.GuestRefused(type="guest.refused", reason="call_over")))
            peer.link.close()
            return
        old, guest.link = guest.link, peer.link
        if old is not None:  # the old connection has not noticed yet that it is dead: the newer one has the guest
            old.send(encode(m.Error(type="error", code=ErrorCode.REPLACED.value,
                                    detail="you are in the call on another connection now")))
            old.close()
        self._cancel_guest_grace(guest)
        peer.guest = guest
        self._welcome_guest(peer, visit, guest)
        if guest.state == "in_call":
            self._readmit(visit, guest, peer.link)
        self._tell_clerk(guest)
        log.info("guest back after a lost connection", extra={"department": visit.department, "role": guest.role})

    def _readmit(self, visit: Visit, guest: Guest, link: Link) -> None:
        """Back in the call: the guest hears of everyone again, and each pair with them starts afresh; a pair
        with the citizen or the clerk while they are away starts when they are back (_restart_with)."""
        link.send(encode(g.GuestAdmitted(type="guest.admitted", visit_id=visit.id)))
        guest.restart_with.clear()
        for peer_id, role, label, other in self._participants(visit):
            if peer_id == guest.peer:
                continue
            offerer = self._offerer(visit, guest.peer, peer_id)
            _joined(link, visit, peer_id, role, label, offer=offerer == guest.peer, afresh=other is not None)
            if other is not None:
                _joined(other, visit, guest.peer, guest.role, guest.label, offer=offerer == peer_id, afresh=True)
            elif peer_id in (CITIZEN, CLERK):
                guest.restart_with.add(peer_id)
            # A guest away now restarts the pair when they come back themselves.

    def _restart_with(self, visit: Visit, who: str, label: str, link: Link) -> None:
        """``who`` (the citizen or the clerk) is back in the call on ``link``: its pairs with the guests who came
        back while it was away start afresh (it offers)."""
        for guest in self.guest_links.in_call(visit.id):
            if who in guest.restart_with and guest.link is not None:
                guest.restart_with.discard(who)
                _joined(link, visit, guest.peer, guest.role, guest.label, offer=True, afresh=True)
                _joined(guest.link, visit, who, who, label, offer=False, afresh=True)

    def _give_back_call(self, peer: StaffPeer, visit: Visit) -> None:
        super()._give_back_call(peer, visit)
        self._restart_with(visit, CLERK, peer.staff.display_name, peer.link)
