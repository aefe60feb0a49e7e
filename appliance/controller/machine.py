"""The kiosk controller: every input becomes an event, handled one at a time.

Inputs come from three directions — the call button (gpiozero's thread), the
kiosk page (Flask's threads) and central (the WebSocket) — so they are queued
and applied in order by one task; no two handlers ever interleave.

Nothing of a visit outlives it: when a visit ends, its id, resume token,
position and the clerk's message are dropped and the language returns to German
for the next citizen.
"""
from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from appliance.controller.view import DepartmentChoice, Screen, View
from protocol import messages as m

log = logging.getLogger(__name__)

LED_FOR_SCREEN = {Screen.IDLE: "idle", Screen.CHOOSING: "idle", Screen.CONSENT: "idle", Screen.WAITING: "waiting",
                  Screen.IN_CALL: "in_call", Screen.ENDED: "idle", Screen.FAULT: "fault"}
DEFAULT_LANGUAGE = "de"


@dataclass(frozen=True)
class Timeouts:
    choosing_s: float = 60.0   # nobody touched anything: back to idle for the next citizen
    consent_s: float = 60.0
    ended_s: float = 8.0       # how long "nothing was kept" stays on screen
    notice_s: float = 12.0     # a refusal shown on the idle screen
    request_s: float = 15.0    # central did not confirm the visit request


class Call(Protocol):
    """One call's media peer (appliance.call.peer.CallPeer)."""
    async def offer(self) -> str: ...
    async def accept_answer(self, sdp: str) -> None: ...
    async def add_candidate(self, candidate: m.Candidate) -> None: ...
    async def close(self) -> None: ...


Send = Callable[[m.Message], Awaitable[None]]
CallFactory = Callable[[list[m.IceServer]], Call]


@dataclass
class _Visit:
    visit_id: str | None = None      # None until central confirmed the request
    resume_token: str | None = None
    department: str = ""


class Controller:
    def __init__(self, *, send: Send, new_call: CallFactory, led: Callable[[str], None],
                 publish: Callable[[View], None], timeouts: Timeouts = Timeouts()):
        self._send, self._new_call, self._led, self._publish = send, new_call, led, publish
        self.timeouts = timeouts
        self.view = View()
        self._visit: _Visit | None = None
        self._call: Call | None = None
        self._events: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        self._timer: asyncio.TimerHandle | None = None
        self._led("idle")

    # == inputs (thread-safe through the loop) ====================================
    def post(self, kind: str, value: Any = None) -> None:
        """Queue an event: press, long_press, choose, confirm, cancel, hangup, language,
        connected, disconnected, central, fault, timeout."""
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
        return self._visit is not None or self._call is not None or self.view.message is not None

    # == dispatch ================================================================
    async def _handle(self, kind: str, value: Any) -> None:
        screen = self.view.screen
        if kind == "tick":
            return  # the watchdog's probe: handling it proves the loop and the queue are alive
        if kind == "central":
            await self._on_central(value)
        elif kind == "connected":
            await self._on_connected(value)
        elif kind == "disconnected":
            self._show(online=False)
        elif kind == "fault":
            self._enter(Screen.FAULT, fault=value)
        elif kind == "language":
            self._show(language=value)
        elif kind == "timeout":
            if value is screen:  # a timer of a screen we already left does nothing
                await self._on_timeout(screen)
        elif screen is Screen.IDLE:
            await self._idle(kind, value)
        elif screen is Screen.CHOOSING:
            await self._choosing(kind, value)
        elif screen is Screen.CONSENT:
            await self._consent(kind, value)
        elif screen is Screen.WAITING:
            if kind in ("long_press", "cancel") and self._visit and self._visit.visit_id:
                await self._send(m.VisitCancel(type="visit.cancel", visit_id=self._visit.visit_id))
        elif screen is Screen.IN_CALL:
            if kind in ("press", "long_press", "hangup") and self._visit and self._visit.visit_id:
                await self._send(m.VisitHangup(type="visit.hangup", visit_id=self._visit.visit_id))
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
            self._visit = _Visit(department=slug)
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
        self._show(online=True, location=welcome.kiosk_location, departments=departments)
        if self.view.screen is Screen.FAULT and self.view.fault == "token_refused":
            self._enter(Screen.IDLE)
        if self._visit and self._visit.visit_id:
            await self._send(m.VisitResume(type="visit.resume", visit_id=self._visit.visit_id,
                                           resume_token=self._visit.resume_token))
        elif self._visit:  # asked, but the confirmation was lost with the connection: ask again
            await self._send(m.VisitRequest(type="visit.request", department=self._visit.department,
                                            language=self.view.language))

    async def _on_central(self, msg: m.Message) -> None:
        visit = self._visit
        if isinstance(msg, m.VisitQueued) and visit and visit.visit_id is None:
            visit.visit_id, visit.resume_token = msg.visit_id, msg.resume_token
            self._show(position=msg.position, expected_wait_s=msg.expected_wait_s)
        elif isinstance(msg, m.VisitRefused) and visit and visit.visit_id is None:
            self._forget_visit()
            self._enter(Screen.IDLE, notice=msg.reason, next_opening=msg.next_opening)
        elif not visit or getattr(msg, "visit_id", None) != visit.visit_id:
            if isinstance(msg, m.Error):
                log.warning("central refused a message: %s (%s)", msg.code, msg.ref)
                if msg.ref == "visit.resume" and visit:  # the visit ended while we were away
                    await self._end("kiosk_lost")
        elif isinstance(msg, m.VisitPosition):
            self._show(position=msg.position, expected_wait_s=msg.expected_wait_s)
        elif isinstance(msg, m.VisitResumed):
            if msg.state == "waiting":
                self._show(position=msg.position, expected_wait_s=msg.expected_wait_s)
        elif isinstance(msg, m.VisitMessageToKiosk):
            self._show(message=msg.text)
        elif isinstance(msg, m.VisitTransferred):
            await self._close_call()
            visit.department = msg.department
            self._enter(Screen.WAITING, notice="transferred", selected=msg.department, position=msg.position,
                        expected_wait_s=msg.expected_wait_s, message=None)
        elif isinstance(msg, m.CallStart):
            await self._close_call()  # a repeated call.start renegotiates from scratch
            self._call = self._new_call(msg.ice_servers)
            self._enter(Screen.IN_CALL, microphone_on=True, camera_on=True, message=None, notice=None)
            await self._send(m.RtcOffer(type="rtc.offer", visit_id=msg.visit_id, sdp=await self._call.offer()))
        elif isinstance(msg, m.RtcAnswer) and self._call:
            await self._call.accept_answer(msg.sdp)
        elif isinstance(msg, m.RtcCandidate) and self._call:
            await self._call.add_candidate(msg.candidate)
        elif isinstance(msg, m.VisitEnded):
            await self._end(msg.reason)

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
        if call is not None:
            await call.close()

    def _forget_visit(self) -> None:
        self._visit = None

    def _is_open(self, slug: str | None) -> bool:
        return any(d.slug == slug and d.open for d in self.view.departments)

    def _earliest_opening(self) -> str | None:
        times = sorted(d.next_opening for d in self.view.departments if d.next_opening)
        return times[0] if times else None

    def _enter(self, screen: Screen, **changes: Any) -> None:
        """Switch screens. Everything visit-specific not given again is cleared."""
        base = dict(selected=None, position=None, expected_wait_s=None, message=None, notice=None,
                    next_opening=None, ended_reason=None, fault=None, microphone_on=False, camera_on=False)
        if screen is Screen.WAITING:
            base.update(position=self.view.position, expected_wait_s=self.view.expected_wait_s,
                        message=self.view.message)
        if screen is Screen.IDLE and self._visit is None:
            base["language"] = DEFAULT_LANGUAGE  # the next citizen starts in German
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

    def _arm(self, seconds: float, screen: Screen) -> None:
        if self._timer:
            self._timer.cancel()
        self._timer = asyncio.get_running_loop().call_later(seconds, self.post, "timeout", screen)

    def _show(self, **changes: Any) -> None:
        self.view = dataclasses.replace(self.view, **changes)
        self._publish(self.view)
