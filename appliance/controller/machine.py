"""The kiosk controller: every input becomes an event, handled one at a time.

Inputs come from three directions — the call button (gpiozero's thread), the
kiosk page (Flask's threads) and central (the WebSocket) — so they are queued
and applied in order by one task; no two handlers ever interleave.

Nothing of a visit outlives it: when a visit ends, its id, resume token,
position and the clerk's message are dropped and the language returns to German
for the next citizen. All of it is held in memory only, never on disk.

Central may go away at any moment (restart, network): the visit's resume token,
replaced by every newer one central sends, lets it take its place back on
reconnect. A call goes on meanwhile (media is peer to peer). A citizen who
leaves (cancel, hang-up) leaves at once on the screen; the kiosk keeps telling
central until central confirms the visit ended (see ``Leaving``).
"""
from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable
from typing import Any

from appliance.controller.view import DepartmentChoice, Screen, View
from appliance.controller.visit import Call, CallFactory, Leaving, Send, Timeouts, Visit
from protocol import fleet as f
from protocol import messages as m

log = logging.getLogger(__name__)

LED_FOR_SCREEN = {Screen.IDLE: "idle", Screen.CHOOSING: "idle", Screen.CONSENT: "idle", Screen.WAITING: "waiting",
                  Screen.IN_CALL: "in_call", Screen.ENDED: "idle", Screen.FAULT: "fault", Screen.SELFTEST: "in_call",
                  Screen.ENROL: "off"}  # the button does nothing until the unit is enrolled
DEFAULT_LANGUAGE = "de"


class Controller:
    def __init__(self, *, send: Send, new_call: CallFactory, led: Callable[[str], None],
                 publish: Callable[[View], None], timeouts: Timeouts = Timeouts()):
        self._send, self._new_call, self._led, self._publish = send, new_call, led, publish
        self.timeouts = timeouts
        self.view = View()
        self._visit: Visit | None = None
        self._leaving: Leaving | None = None
        self._call: Call | None = None
        self._call_number = 0            # tells a current call's state reports from those of closed calls
        self._call_connected = False
        self._media_failed = False       # this visit's call failed here; central may not know yet
        self._media_timer: asyncio.TimerHandle | None = None
        self._events: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        self._timer: asyncio.TimerHandle | None = None
        self.selftest = None  # appliance.selftest.runner.Selftest, set by the service
        self.remote = None  # appliance.fleet.settings.RemoteSettings: central's settings and actions
        self._led("idle")

    # == inputs (thread-safe through the loop) ====================================
    def post(self, kind: str, value: Any = None) -> None:
        """Queue an event: press, long_press, choose, confirm, cancel, hangup, language,
        connected, disconnected, central, fault, timeout, rtc_state, media_timeout, tick,
        selftest ("button" | "central"), selftest_view, selftest_end."""
        self._events.put_nowait((kind, value))

    async def run(self) -> None:
        while True:
            kind, value = await self._events.get()
            try:
                await self._handle(kind, value)
            except Exception:  # one bad event must not stop the kiosk; the watchdog sees the loop alive
                log.exception("event %s failed", kind)
            finally:
                self._events.task_done()

    async def settle(self) -> None:
        """Wait until every queued event is handled (tests, shutdown)."""
        await self._events.join()

    @property
    def has_visit_data(self) -> bool:
        return (self._visit is not None or self._leaving is not None or self._call is not None
                or self.view.message is not None)

    # == dispatch ================================================================
    async def _handle(self, kind: str, value: Any) -> None:
        screen = self.view.screen
        if kind == "tick":
            if value is not None:
                value.set()  # the watchdog's probe: handling it proves the loop and the controller are alive
            return
        if self.remote is not None and self.remote.wake(kind):
            return  # the screen was dark outside office hours: this press only woke it
        if kind == "central":
            await self._on_central(value)
        elif kind == "connected":
            await self._on_connected(value)
        elif kind == "disconnected":
            self._show(online=False)
        elif kind == "fault":
            if value == "replaced":  # this unit will not talk to central again until restarted
                await self._close_call()
                self._forget_visit()
                self._leaving = None
            self._enter(Screen.FAULT, fault=value)
        elif kind == "enrol":  # appliance/fleet/enrol.py: waiting to be claimed (the screen), or claimed (None)
            if screen is Screen.SELFTEST:
                self._show(enrol=value)  # shown once the self-test is over
            elif value is not None:
                self._enter(Screen.ENROL, enrol=value)
            elif screen is Screen.ENROL:
                self._enter(Screen.IDLE, enrol=None)
        elif kind == "rtc_state":
            await self._on_rtc_state(*value)
        elif kind == "media_timeout":
            if value == self._call_number and self._call is not None and not self._call_connected:
                log.warning("the call's media did not connect within %.0f s", self.timeouts.media_s)
                await self._on_media_failed()
        elif kind == "language":
            self._show(language=value)
        elif kind == "timeout":
            if value is screen:  # a timer of a screen we already left does nothing
                await self._on_timeout(screen)
        elif kind == "selftest":  # held 5 s from idle (its first second chose), or central; never in a visit
            if self.selftest and not self.has_visit_data and screen in (Screen.IDLE, Screen.CHOOSING, Screen.CONSENT,
                                                                        Screen.ENROL):
                self._enter(Screen.SELFTEST, selftest=self.selftest.start(value))
        elif screen is Screen.SELFTEST:  # appliance/selftest/runner.py runs the test and says when it is over
            if kind == "selftest_end":
                self._enter(Screen.ENROL if self.view.enrol else Screen.IDLE)
            else:
                self._show(selftest=value) if kind == "selftest_view" else self.selftest.input(kind)
        elif screen is Screen.IDLE:
            await self._idle(kind, value)
        elif screen is Screen.CHOOSING:
            await self._choosing(kind, value)
        elif screen is Screen.CONSENT:
            await self._consent(kind, value)
        elif screen is Screen.WAITING:
            if kind in ("long_press", "cancel") and self._visit and self._visit.visit_id:
                await self._leave(in_call=False)
        elif screen is Screen.IN_CALL:
            if kind in ("press", "long_press", "hangup") and self._visit and self._visit.visit_id:
                await self._leave(in_call=True)
        elif screen is Screen.ENDED and kind in ("press", "long_press"):
            self._enter(Screen.IDLE)

    async def _idle(self, kind: str, value: Any) -> None:
        open_ = [d for d in self.view.departments if d.open]
        if kind == "choose":
            if self._is_open(value):
                self._enter(Screen.CONSENT, selected=value)
        elif kind in ("press", "long_press"):
            if not self.view.online:
                return  # the idle screen already says the service is unreachable
            if not open_:
                self._enter(Screen.IDLE, notice="closed", next_opening=self._earliest_opening())
            elif len(open_) == 1:
                self._enter(Screen.CONSENT, selected=open_[0].slug)
            else:
                self._enter(Screen.CHOOSING, selected=open_[0].slug)

    async def _choosing(self, kind: str, value: Any) -> None:
        open_ = [d.slug for d in self.view.departments if d.open]
        if kind == "press" and open_:
            i = open_.index(self.view.selected) if self.view.selected in open_ else -1
            self._enter(Screen.CHOOSING, selected=open_[(i + 1) % len(open_)])  # re-arms the timeout
        elif kind == "long_press" and self._is_open(self.view.selected):
            self._enter(Screen.CONSENT, selected=self.view.selected)
        elif kind == "choose" and self._is_open(value):
            self._enter(Screen.CONSENT, selected=value)
        elif kind == "cancel":
            self._enter(Screen.IDLE)

    async def _consent(self, kind: str, value: Any) -> None:
        if kind in ("press", "confirm"):
            slug = self.view.selected
            self._visit = Visit(department=slug)
            self._enter(Screen.WAITING, selected=slug)
            self._arm(self.timeouts.request_s, Screen.WAITING)
            await self._send(m.VisitRequest(type="visit.request", department=slug, language=self.view.language))
        elif kind in ("long_press", "cancel"):
            self._enter(Screen.IDLE)

    async def _on_timeout(self, screen: Screen) -> None:
        if screen is Screen.WAITING:
            if self._visit and self._visit.visit_id is None:  # central never confirmed
                self._forget_visit()
                self._enter(Screen.IDLE, notice="unreachable")
        elif screen is Screen.IDLE:
            self._show(notice=None, next_opening=None)
        else:
            self._enter(Screen.IDLE)

    # == central =================================================================
    async def _on_connected(self, welcome: m.Welcome) -> None:
        departments = tuple(DepartmentChoice(d.slug, d.name, d.open, d.next_opening) for d in welcome.departments)
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
                                            language=self.view.language))

    async def _on_central(self, msg: m.Message) -> None:
        if self.remote is not None and await self.remote.handle(msg):
            return  # settings or an action (appliance/fleet/)
        visit = self._visit
        msg_visit = getattr(msg, "visit_id", None)
        if self._leaving and msg_visit == self._leaving.visit_id:
            await self._on_left_visit(msg)
        elif isinstance(msg, m.VisitQueued) and visit and visit.visit_id is None:
            visit.visit_id, visit.resume_token = msg.visit_id, msg.resume_token
            self._show(position=msg.position, expected_wait_s=msg.expected_wait_s)
        elif isinstance(msg, m.VisitRefused) and visit and visit.visit_id is None:
            self._forget_visit()
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

    async def _leave(self, *, in_call: bool, reason: str | None = None) -> None:
        """The citizen cancels or hangs up: the screen follows at once, central is told now or when back."""
        visit = self._visit
        self._leaving = Leaving(visit.visit_id, visit.resume_token, reason)
        if in_call:
            await self._send(m.VisitHangup(type="visit.hangup", visit_id=visit.visit_id, reason=reason))
            await self._end(reason or "hangup_kiosk")
        else:
            await self._send(m.VisitCancel(type="visit.cancel", visit_id=visit.visit_id))
            await self._end("cancelled")

    # == the call's media ===========================================================
    async def _start_call(self, msg: m.CallStart) -> None:
        await self._close_call()  # a repeated call.start renegotiates from scratch
        self._call_number += 1
        number = self._call_number
        self._call = self._new_call(msg.ice_servers, lambda state: self.post("rtc_state", (number, state)))
        self._media_failed = False
        self._enter(Screen.IN_CALL, microphone_on=True, camera_on=True, message=None, notice=None)
        # Central has its own timer; this one also holds when central is away.
        self._media_timer = asyncio.get_running_loop().call_later(self.timeouts.media_s, self.post,
                                                                  "media_timeout", number)
        await self._send(m.RtcOffer(type="rtc.offer", visit_id=msg.visit_id, sdp=await self._call.offer()))

    async def _on_rtc_state(self, number: int, state: str) -> None:
        if number != self._call_number or self._call is None:
            return  # a call we closed already
        if state == "connected" and not self._call_connected:
            self._call_connected = True
            self._cancel_media_timer()
            await self._report_rtc("connected")
        elif state == "failed":
            await self._on_media_failed()
        elif state in ("camera_failed", "microphone_failed") and self._visit and self._visit.visit_id:
            device = state.removesuffix("_failed")  # appliance/call/devices.py watches the call's devices
            await self._send(f.DeviceFault(type="device.fault", device=device, fault=state, visit_id=self._visit.visit_id))
            if device == "camera":  # the citizen can still talk: go on audio-only, central tells the clerk
                self._show(camera_on=False, notice="camera_failed")
            else:  # nobody could hear the citizen: end the call, saying why on both sides
                await self._leave(in_call=True, reason="device_failed")

    async def _on_media_failed(self) -> None:
        """The call cannot carry media: back to waiting; central answers call.failed with the new place."""
        await self._close_call()
        self._media_failed = True
        self._enter(Screen.WAITING, notice="call_failed", selected=self._visit.department if self._visit else None,
                    position=None, expected_wait_s=None, message=None)
        await self._report_rtc("failed")

    async def _report_rtc(self, state: str) -> None:
        if self._visit and self._visit.visit_id:
            await self._send(m.RtcState(type="rtc.state", visit_id=self._visit.visit_id, state=state))

    async def _end(self, reason: str) -> None:
        await self._close_call()
        self._forget_visit()
        if reason == "cancelled":
            self._enter(Screen.IDLE)
        else:
            self._enter(Screen.ENDED, ended_reason=reason)

    # == helpers =================================================================
    async def _close_call(self) -> None:
        call, self._call = self._call, None
        self._call_connected = False
        self._cancel_media_timer()
        if call is not None:
            await call.close()

    def _cancel_media_timer(self) -> None:
        if self._media_timer is not None:
            self._media_timer.cancel()
            self._media_timer = None

    def _forget_visit(self) -> None:
        self._visit = None
        self._media_failed = False

    def _is_open(self, slug: str | None) -> bool:
        return any(d.slug == slug and d.open for d in self.view.departments)

    def _earliest_opening(self) -> str | None:
        times = sorted(d.next_opening for d in self.view.departments if d.next_opening)
        return times[0] if times else None

    def _enter(self, screen: Screen, **changes: Any) -> None:
        """Switch screens. Everything visit-specific not given again is cleared."""
        if self.view.screen is Screen.SELFTEST and screen is not Screen.SELFTEST:
            self.selftest.stop()  # however the screen is left: camera and microphone off
        base = dict(selected=None, position=None, expected_wait_s=None, message=None, notice=None,
                    next_opening=None, ended_reason=None, fault=None, microphone_on=False, camera_on=False,
                    selftest=None)
        if screen is Screen.WAITING:
            base.update(position=self.view.position, expected_wait_s=self.view.expected_wait_s,
                        message=self.view.message)
        if screen is Screen.IDLE and self._visit is None:
            # the next citizen starts in the kiosk's language (German unless central set another)
            base["language"] = self.remote.default_language if self.remote is not None else DEFAULT_LANGUAGE
        self._show(screen=screen, **{**base, **changes})
        self._led(LED_FOR_SCREEN[screen])
        timeout = {Screen.CHOOSING: self.timeouts.choosing_s, Screen.CONSENT: self.timeouts.consent_s,
                   Screen.ENDED: self.timeouts.ended_s}.get(screen)
        if screen is Screen.IDLE and changes.get("notice"):
            timeout = self.timeouts.notice_s
        if timeout is not None:
            self._arm(timeout, screen)
        elif self._timer:
            self._timer.cancel()

    # == for appliance/fleet (settings and actions from central) ====================
    @property
    def busy(self) -> bool:
        return self.has_visit_data or self.view.screen in (Screen.WAITING, Screen.IN_CALL)

    def refresh(self, **changes: Any) -> None:
        self._show(**changes)

    async def interrupt_visit(self) -> None:
        """IT forced an action: the visit ends as if the citizen had left it."""
        if self._visit is not None and self._visit.visit_id:
            await self._leave(in_call=self.view.screen is Screen.IN_CALL)
        await self._close_call()
        self._forget_visit()
        self._leaving = None  # central ends it on the message just sent, or when this kiosk is gone
        self._enter(Screen.IDLE)

    def _arm(self, seconds: float, screen: Screen) -> None:
        if self._timer:
            self._timer.cancel()
        self._timer = asyncio.get_running_loop().call_later(seconds, self.post, "timeout", screen)

    def _show(self, **changes: Any) -> None:
        self.view = dataclasses.replace(self.view, **changes)
        self._publish(self.view)
