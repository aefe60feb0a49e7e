"""Guests in the kiosk's call (an interpreter, a colleague): a peer connection each, a tile each.

Central says who joins (``call.participant_joined``; the citizen's side offers) and who leaves
(``call.participant_left``). The pair with the clerk is the call; a guest's pair is not: when it
fails, central hears so for that guest (``rtc.state`` with ``peer``) and the call goes on.
See core.py for how the controller is assembled; appliance/call/mesh.py for the media.
"""
from __future__ import annotations

import logging

from appliance.controller.media import CallMedia
from appliance.controller.view import Participant, Screen
from protocol import messages as m
from protocol import participants as p

log = logging.getLogger(__name__)

CALL_PAIR = ("citizen", "clerk")  # not guests: the pair of every call, without ``peer`` on the wire


class CallGuests(CallMedia):
    async def _on_guest_message(self, msg: m.Message) -> bool:
        """Handle a message about a guest of the current call; False if it is about the clerk's pair."""
        if isinstance(msg, p.ParticipantJoined):
            await self._guest_joined(msg)
        elif isinstance(msg, p.ParticipantLeft):
            await self._guest_left(msg.peer)
        elif isinstance(msg, (m.RtcAnswer, m.RtcCandidate)) and msg.peer not in (None, *CALL_PAIR):
            guests = getattr(self._call, "guests", None)
            if guests is None or msg.peer not in guests:
                log.info("%s for a guest not in this call; ignored", msg.type)
            elif isinstance(msg, m.RtcAnswer):
                await self._call.accept_guest_answer(msg.peer, msg.sdp)
            else:
                await self._call.add_guest_candidate(msg.peer, msg.candidate)
        else:
            return False
        return True

    async def _guest_joined(self, msg: p.ParticipantJoined) -> None:
        if msg.peer in CALL_PAIR or self._call is None or self.view.screen is not Screen.IN_CALL:
            return
        if not msg.offer:
            # The contract has the citizen's side offer to every guest; the kiosk takes no offers.
            log.warning("central asked the kiosk to wait for a guest's offer; it only makes offers")
            return
        if not hasattr(self._call, "add_guest"):
            log.warning("this call cannot take guests")
            return
        number = self._call_number
        self._call.on_guest_state = lambda peer, state: self.post("guest_state", (number, peer, state))
        shown = tuple(x for x in self.view.participants if x.peer != msg.peer)
        self._show(participants=(*shown, Participant(msg.peer, msg.role, msg.label)))
        sdp = await self._call.add_guest(msg.peer)
        await self._send(m.RtcOffer(type="rtc.offer", visit_id=msg.visit_id, peer=msg.peer, sdp=sdp))

    async def _guest_left(self, peer: str) -> None:
        self._show(participants=tuple(x for x in self.view.participants if x.peer != peer))
        if self._call is not None and hasattr(self._call, "remove_guest"):
            await self._call.remove_guest(peer)

    async def _on_guest_state(self, number: int, peer: str, state: str) -> None:
        """A guest pair's media: told to central for that guest; never the call's fault path."""
        if number != self._call_number or self._call is None or self._visit is None or not self._visit.visit_id:
            return
        if peer not in getattr(self._call, "guests", {}):
            return
        if state in ("connected", "failed"):
            if state == "failed":
                log.warning("the connection to a guest failed; the call goes on without them")
            await self._send(m.RtcState(type="rtc.state", visit_id=self._visit.visit_id, peer=peer, state=state))
