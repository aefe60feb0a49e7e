"""Guests in a call: the clerk invites, admits and removes an interpreter or colleague; central routes the
signaling of every pair of participants.

A call with guests is a mesh of two-party peer connections (protocol/participants.py). Central only passes
each pair's `rtc.*` on, with the same limits and candidate filter as the citizen–clerk pair
(central/live/relay.py), and rewrites `peer` from "to whom" into "from whom". Only the citizen–clerk pair
decides the call's fate (media timer, `call.failed`): a guest's pair failing costs that pair, not the call.

A guest belongs to one call. When the call is over (hang-up, transfer, failed media, a lost side's grace
running out) every guest of it gets what the clerk gets and is disconnected, and the links are forgotten.
A guest whose connection breaks may come back with their rejoin key (guest_rejoin.py).
"""
from __future__ import annotations

import asyncio
import logging

from central.live import ice
from central.live.calls import CallSetup
from central.live.limits import retry_after_s
from central.live.link import Link
from central.live.peers import GuestPeer, StaffPeer
from central.rooms import Visit, VisitState
from central.rooms.guest_links import Guest, GuestLimitReached
from protocol import guests as g
from protocol import messages as m
from protocol import participants as p
from protocol.codec import encode
from protocol.errors import ErrorCode, ProtocolError

log = logging.getLogger(__name__)

RTC = (m.RtcOffer, m.RtcAnswer, m.RtcCandidate, m.RtcState)
CITIZEN, CLERK = "citizen", "clerk"
# A guest socket that has not said a link's secret by then is closed: it holds nothing open for long.
HELLO_WITHIN_S = 30.0


class GuestSide(CallSetup):
    # == the clerk's console ===================================================
    def _guest_staff_message(self, peer: StaffPeer, msg: p.GuestInvite | p.GuestAdmit | p.GuestRemove) -> None:
        visit = self.rooms.get(msg.visit_id)
        if visit is None or visit.clerk_id != peer.staff.id or peer.visit_id != visit.id:
            raise ProtocolError(ErrorCode.NOT_YOUR_VISIT, "you are not in a call with this visit")
        self._require(visit, VisitState.IN_CALL, "guests join a call; pick the visit up first")
        if isinstance(msg, p.GuestInvite):
            if wait := self.guest_invites.take(peer.staff.id):
                seconds = retry_after_s(wait)
                raise ProtocolError(ErrorCode.RATE_LIMITED, f"too many guest links; try again in {seconds} s",
                                    retry_after_s=seconds)
            try:
                guest = self.guest_links.create(visit.id, peer.staff.id, msg.role, msg.label)
            except GuestLimitReached as full:
                raise ProtocolError(ErrorCode.WRONG_STATE, f"{full}; revoke a link or remove a guest first") from None
            self._tell_clerk(guest)
            return
        guest = self.guest_links.get(visit.id, msg.peer)
        if guest is None:
            raise ProtocolError(ErrorCode.UNKNOWN_PEER, "no such guest in this call (left, removed or revoked)")
        if isinstance(msg, p.GuestAdmit):
            if guest.state != "waiting":
                raise ProtocolError(ErrorCode.WRONG_STATE, f"the guest is {guest.state.replace('_', ' ')}, not waiting")
            self._admit(visit, guest)
        else:
            was = guest.state
            self._drop_guest(visit, guest, "revoked" if was == "invited" else "removed",
                             g.GuestRemoved(type="guest.removed", visit_id=visit.id))

    def _tell_clerk(self, guest: Guest, reason: str | None = None) -> None:
        clerk = self.staff.get(guest.clerk_id)
        if clerk is not None and clerk.visit_id == guest.visit_id:
            clerk.link.send(encode(p.GuestStatus(type="guest.status", visit_id=guest.visit_id, peer=guest.peer,
                                                 role=guest.role, label=guest.label, state=guest.state,
                                                 link=guest.path, reason=reason,
                                                 away=guest.link is None and guest.state not in ("invited", "gone"))))

    def _admit(self, visit: Visit, guest: Guest) -> None:
        """In: the guest hears of everyone (and waits for their offers), everyone hears of the guest."""
        others = self._participants(visit)
        self.guest_links.admit(guest)
        if guest.link is None:  # away for the moment: they hear of everyone when they come back (guest_rejoin.py)
            self._tell_clerk(guest)
            return
        guest.link.send(encode(g.GuestAdmitted(type="guest.admitted", visit_id=visit.id)))
        for peer_id, role, label, _ in others:
            guest.link.send(encode(p.ParticipantJoined(type="call.participant_joined", visit_id=visit.id,
                                                       peer=peer_id, role=role, label=label, offer=False)))
        joined = encode(p.ParticipantJoined(type="call.participant_joined", visit_id=visit.id, peer=guest.peer,
                                            role=guest.role, label=guest.label, offer=True))
        for _, _, _, link in others:
            if link is not None:
                link.send(joined)
        self._tell_clerk(guest)
        log.info("guest admitted to a call", extra={"department": visit.department, "role": guest.role})

    def _drop_guest(self, visit: Visit, guest: Guest, reason: str, notice: m.Message | None) -> None:
        """The guest is out (revoked, removed, left, lost); the call goes on without them."""
        was_in_call = guest.state == "in_call"
        self._cancel_guest_grace(guest)
        self.guest_links.remove(guest)
        if guest.link is not None:
            if notice is not None:
                guest.link.send(encode(notice))
            guest.link.close()
        if was_in_call:
            left = encode(p.ParticipantLeft(type="call.participant_left", visit_id=visit.id, peer=guest.peer))
            for _, _, _, link in self._participants(visit):
                if link is not None:
                    link.send(left)
        self._tell_clerk(guest, reason)

    def _participants(self, visit: Visit) -> list[tuple[str, str, str, Link | None]]:
        """(peer id, role, label, connection) of everyone in the call, guests in the order admitted."""
        clerk = self.staff.get(visit.clerk_id) if visit.clerk_id is not None else None
        clerk_link = clerk.link if clerk is not None and clerk.visit_id == visit.id else None
        out = [(CITIZEN, "citizen", "", self._citizen_link(visit)),
               (CLERK, "clerk", clerk.staff.display_name if clerk is not None else "", clerk_link)]
        guests = sorted(self.guest_links.in_call(visit.id), key=lambda guest: guest.admitted)
        return out + [(guest.peer, guest.role, guest.label, guest.link) for guest in guests]

    # == the guest's browser ===================================================
    def guest_connected(self, peer: GuestPeer) -> None:
        def no_hello() -> None:
            if peer.guest is None:
                peer.link.close()
        asyncio.get_running_loop().call_later(HELLO_WITHIN_S, no_hello)

    def guest_message(self, peer: GuestPeer, msg: m.Message) -> None:
        if isinstance(msg, m.Ping):
            peer.link.send(encode(m.Pong(type="pong")))
            return
        if isinstance(msg, g.GuestHello):
            self._hello(peer, msg)
            return
        guest = peer.guest
        if guest is None:
            raise ProtocolError(ErrorCode.WRONG_STATE, "say guest.hello with the link first")
        if guest.link is not peer.link:
            raise ProtocolError(ErrorCode.REPLACED, "you are in the call on another connection now")
        visit = self.rooms.get(guest.visit_id)
        if msg.visit_id != guest.visit_id or visit is None or guest.state == "gone":
            raise ProtocolError(ErrorCode.NOT_YOUR_VISIT, "this link is for another call, or its call is over")
        if isinstance(msg, g.GuestReady):
            if guest.state == "joining":
                guest.state = "waiting"
                self.guest_links.changed(guest)
                self._tell_clerk(guest)
        elif isinstance(msg, g.GuestLeave):
            self._drop_guest(visit, guest, "left", None)
        elif isinstance(msg, RTC):
            if guest.state != "in_call":
                raise ProtocolError(ErrorCode.WRONG_STATE, "wait until the clerk lets you in")
            if msg.peer is None:
                raise ProtocolError(ErrorCode.INVALID_FIELD, "peer: name the participant this pair connects you to")
            self._pair(visit, guest.peer, msg)
        else:  # pragma: no cover - GUEST_TO_CENTRAL and this method must list the same types
            raise ProtocolError(ErrorCode.UNKNOWN_TYPE, f"{msg.type} is not handled")

    def _hello(self, peer: GuestPeer, msg: g.GuestHello) -> None:
        if peer.guest is not None:
            raise ProtocolError(ErrorCode.WRONG_STATE, "this connection already has its link")
        guest = self.guest_links.claim(msg.link, peer.link)
        visit = self.rooms.get(guest.visit_id) if guest is not None else None
        if guest is None or visit is None or visit.state is not VisitState.IN_CALL or visit.clerk_id != guest.clerk_id:
            # Unknown, used, revoked or of a call that is over: all look the same from outside.
            if guest is not None:
                self.guest_links.remove(guest)  # a link of a call that is over: gone for good
            peer.link.send(encode(g.GuestRefused(type="guest.refused", reason="invalid_link")))
            peer.link.close()
            return
        peer.guest = guest
        self._welcome_guest(peer, visit, guest)
        self._tell_clerk(guest)

    def _welcome_guest(self, peer: GuestPeer, visit: Visit, guest: Guest) -> None:
        department = self.departments.get(visit.department)
        peer.link.send(encode(g.GuestWelcome(type="guest.welcome", visit_id=visit.id, peer=guest.peer,
                                             role=guest.role, label=guest.label,
                                             department=department.name if department else visit.department,
                                             ice_servers=self.ice_for(ice.GUEST), rejoin=guest.key,
                                             rejoin_within_s=self.resume_grace_s)))

    def _cancel_guest_grace(self, guest: Guest) -> None:
        if (handle := self._guest_grace.pop(guest.peer, None)) is not None:
            handle.cancel()

    # == signaling between pairs ===============================================
    def _pair(self, visit: Visit, sender: str, msg: m.Message) -> m.Message | None:
        """Relay ``msg`` of a pair with a guest and return None; for the citizen–clerk pair return it (with
        ``peer`` left out) for the caller's own handling."""
        to = getattr(msg, "peer", None)
        if to is None or {sender, to} == {CITIZEN, CLERK}:
            return msg if to is None else msg.model_copy(update={"peer": None})
        if to == sender:
            raise ProtocolError(ErrorCode.INVALID_FIELD, "peer: that is you; name the other end of the pair")
        self._require(visit, VisitState.IN_CALL, "the call has not begun or is over")
        participants = {peer_id: link for peer_id, _, _, link in self._participants(visit)}
        if to not in participants:
            raise ProtocolError(ErrorCode.UNKNOWN_PEER, f"{to} is not in this call")
        target = participants[to]
        if isinstance(msg, m.RtcState):
            return None  # each end of a guest pair copes with it; the call does not hang on it
        if isinstance(msg, (m.RtcOffer, m.RtcAnswer)):
            offerer = self._offerer(visit, sender, to)
            if isinstance(msg, m.RtcOffer) != (offerer == sender):
                raise ProtocolError(ErrorCode.WRONG_STATE, f"between {sender} and {to}, {offerer} sends the offer")
        self.relay.forward(visit.id, f"{sender}>{to}", msg.model_copy(update={"peer": sender}), target)
        return None

    def _offerer(self, visit: Visit, one: str, other: str) -> str:
        """Who offers in a pair: the citizen's side always, else the clerk, else the guest admitted first."""
        for first in (CITIZEN, CLERK):
            if first in (one, other):
                return first
        a, b = self.guest_links.get(visit.id, one), self.guest_links.get(visit.id, other)
        return one if a is not None and b is not None and a.admitted < b.admitted else other

    # == the call's end, and a clerk coming back ==================================
    def _free_clerk(self, visit: Visit, reason: str, notice: m.Message | None = None) -> None:
        """The call is over: its guests get what the clerk gets (visit.ended or call.failed) and are gone."""
        told = encode(notice or m.VisitEnded(type="visit.ended", visit_id=visit.id, reason=reason))
        for guest in self.guest_links.drop_call(visit.id):
            self._cancel_guest_grace(guest)
            if guest.link is not None:
                guest.link.send(told)
                guest.link.close()
        super()._free_clerk(visit, reason, notice)

    def _give_back_call(self, peer: StaffPeer, visit: Visit) -> None:
        """The clerk's console is back in the call: it hears of the guests again, and offers anew to those in
        the call (its page may have been reloaded; a guest replaces the pair's old connection). A guest who came
        back while the console was away restarts the pair in guest_rejoin.py instead."""
        super()._give_back_call(peer, visit)
        guests = self.guest_links.of_visit(visit.id)
        for guest in guests:
            self._tell_clerk(guest)
        for guest in guests:
            if guest.state == "in_call" and not (CLERK in guest.restart_with and guest.link is not None):
                peer.link.send(encode(p.ParticipantJoined(type="call.participant_joined", visit_id=visit.id,
                                                          peer=guest.peer, role=guest.role, label=guest.label,
                                                          offer=True)))
