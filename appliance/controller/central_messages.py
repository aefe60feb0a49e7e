"""What central tells the kiosk: the welcome, the visit's place, the call, and visits already left.

Central may go away at any moment (restart, network): the visit's resume token,
replaced by every newer one central sends, lets it take its place back on
reconnect. A citizen who leaves (cancel, hang-up) leaves at once on the screen;
the kiosk keeps telling central until central confirms the visit ended (see
``Leaving`` in visit.py). See core.py for how the controller is assembled.
"""
from __future__ import annotations

import logging

from appliance.controller.guests import CallGuests
from appliance.controller.view import Screen, department_choices
from appliance.controller.visit import Visit
from protocol import messages as m

log = logging.getLogger(__name__)


class CentralMessages(CallGuests):
    async def _on_connected(self, welcome: m.Welcome) -> None:
        departments = department_choices(welcome.departments)
        if self.remote is not None:
            departments = self.remote.offer(departments)  # only those this kiosk offers, in its order
        self._show(online=True, location=welcome.kiosk_location, departments=departments)
        if self.view.screen is Screen.FAULT and self.view.fault == "token_refused":
            self._enter(Screen.IDLE)
        # Central ends a visit of ours it still holds unless our first message resumes it: after
        # a restart of this unit (nothing kept) the ping says at once that the old visit is gone.
        resumes = [v for v in (self._leaving, self._visit) if v is not None and v.visit_id and v.resume_token]
        for visit in resumes:
            await self._send(m.VisitResume(type="visit.resume", visit_id=visit.visit_id,
                                           resume_token=visit.resume_token))
        if not resumes:
            await self._send(m.Ping(type="ping"))
        if self._visit and self._visit.visit_id is None:
            # asked, but the confirmation was lost with the connection: ask again
            await self._send(m.VisitRequest(type="visit.request", department=self._visit.department,
                                            language=self.view.language, booking=self._visit.booking))

    async def _on_central(self, msg: m.Message) -> None:
        if self.remote is not None and await self.remote.handle(msg):
            return  # settings or an action (appliance/fleet/)
        if self.updates is not None and await self.updates.handle(msg):
            return  # an update offer or withdrawal (appliance/update/)
        visit = self._visit
        msg_visit = getattr(msg, "visit_id", None)
        if self._leaving and msg_visit == self._leaving.visit_id:
            await self._on_left_visit(msg)
        elif isinstance(msg, m.VisitQueued) and visit and visit.visit_id is None:
            visit.visit_id, visit.resume_token = msg.visit_id, msg.resume_token
            self._show(position=msg.position, expected_wait_s=msg.expected_wait_s)
        elif isinstance(msg, m.VisitRefused) and visit and visit.visit_id is None:
            self._forget_visit()
            if visit.booking is not None:  # the appointment screen says why, and when the appointment is
                self._booking_refused(visit, msg)
            else:
                self._enter(Screen.IDLE, notice=msg.reason, next_opening=msg.next_opening)
        elif isinstance(msg, m.Error):
            await self._on_error(msg)
        elif not visit or msg_visit != visit.visit_id:
            pass  # about a visit that is not ours (any more)
        else:
            if token := getattr(msg, "resume_token", None):
                visit.resume_token = token  # every change of place comes with the current token
            await self._on_visit_message(visit, msg)

    async def _on_visit_message(self, visit: Visit, msg: m.Message) -> None:
        if await self._on_guest_message(msg):
            return  # a guest of the call joined or left, or their pair's signalling (guests.py)
        if isinstance(msg, m.VisitPosition):
            self._show(position=msg.position, expected_wait_s=msg.expected_wait_s)
        elif isinstance(msg, m.VisitResumed):
            await self._on_resumed(msg)
        elif isinstance(msg, m.VisitMessageToKiosk):
            self._show(message=msg.text)
        elif isinstance(msg, m.VisitTransferred):
            await self._close_call()
            self._media_failed = False
            visit.department = msg.department
            self._enter(Screen.WAITING, notice="transferred", selected=msg.department, position=msg.position,
                        expected_wait_s=msg.expected_wait_s, message=None)
        elif isinstance(msg, m.CallStart):
            await self._start_call(msg)
        elif isinstance(msg, m.CallFailed):
            log.warning("%s; the visit waits again", self._call_failed_words(msg.reason))
            await self._close_call()
            self._media_failed = False  # central knows: it put the visit back at the head of its queue
            self._enter(Screen.WAITING, notice="call_failed", selected=visit.department, position=msg.position,
                        expected_wait_s=msg.expected_wait_s, message=None)
        elif isinstance(msg, m.RtcAnswer) and self._call:
            await self._call.accept_answer(msg.sdp)
        elif isinstance(msg, m.RtcCandidate) and self._call:
            await self._call.add_candidate(msg.candidate)
        elif isinstance(msg, m.VisitEnded):
            await self._end(msg.reason)

    def _call_failed_words(self, reason: str) -> str:
        """What the journal says of central's call.failed: whose report ended the call, and when (for IT)."""
        if self._call is None and self._media_failed:
            return f"central ended the call this kiosk reported failed ({reason})"
        if self._call_connected:
            why = {"ice_failed": " (the clerk's side reported its connection failed)",
                   "media_timeout": " (central did not learn in time that it connected)"}.get(reason, "")
            return f"central ended the call after it had connected here: {reason}{why}"
        return f"central ended the call before it connected: {reason}"

    async def _on_resumed(self, msg: m.VisitResumed) -> None:
        if msg.state == "waiting":
            if self.view.screen is Screen.IN_CALL:  # central ended the call while we were apart
                await self._close_call()
                self._enter(Screen.WAITING, selected=msg.department)
            self._show(position=msg.position, expected_wait_s=msg.expected_wait_s)
        elif self._call is not None and self._call_connected:
            await self._report_rtc("connected")  # the call went on while central was away
        elif self._call is None and self._media_failed:
            await self._report_rtc("failed")  # it failed here meanwhile: central puts the visit back
        # else: picked up while we were away; call.start follows

    async def _on_error(self, msg: m.Error) -> None:
        log.warning("central refused a message: %s (%s)", msg.code, msg.ref)
        if msg.ref == "visit.request" and self._visit and self._visit.visit_id is None:
            self._forget_visit()  # e.g. rate_limited: say so instead of waiting for a confirmation
            self._enter(Screen.IDLE, notice=msg.code)
            return
        if msg.ref not in ("visit.resume", "visit.cancel", "visit.hangup") or msg.code != "not_your_visit":
            return
        # Central answers in order, and a left visit is always resumed first.
        if self._leaving is not None:
            self._leaving = None  # central does not know it any more: nothing left to tell
        elif self._visit and msg.ref == "visit.resume":  # the visit ended while we were away
            await self._end("kiosk_lost")

    async def _on_left_visit(self, msg: m.Message) -> None:
        """Central speaks of a visit the citizen already left: answer with the leave message for its state."""
        leaving = self._leaving
        if isinstance(msg, m.VisitEnded):
            self._leaving = None
            return
        if token := getattr(msg, "resume_token", None):
            leaving.resume_token = token
        # Only news that central did not (or could not) act on our message: a position update may
        # simply have crossed the cancel on the wire.
        if isinstance(msg, m.CallStart) or (isinstance(msg, m.VisitResumed) and msg.state == "in_call"):
            await self._send(m.VisitHangup(type="visit.hangup", visit_id=leaving.visit_id, reason=leaving.reason))
        elif isinstance(msg, (m.VisitResumed, m.VisitTransferred, m.CallFailed)):
            await self._send(m.VisitCancel(type="visit.cancel", visit_id=leaving.visit_id))
