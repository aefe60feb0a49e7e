"""What every role of the kiosk controller shares: its state, its event queue, screens and leaving.

The controller is assembled from role mixins, each its own module, on top of this core::

    ControllerCore (core.py)  <-  CallMedia (media.py)  <-  CallGuests (guests.py)
                                                        <-  CentralMessages (central_messages.py)
                              <-  BookingFlow (booking.py)  <-  ScreenFlow (screens.py)
    Controller(CentralMessages, ScreenFlow) (machine.py): the dispatch of every event

All of them share one object and one event loop task, so a handler in any module
runs to its end before the next event is applied.
"""
from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable
from typing import Any

from appliance.controller.view import Screen, View
from appliance.controller.visit import Call, CallFactory, Leaving, Send, Timeouts, Visit
from protocol import messages as m

log = logging.getLogger(__name__)

LED_FOR_SCREEN = {Screen.IDLE: "idle", Screen.CHOOSING: "idle", Screen.CONSENT: "idle", Screen.WAITING: "waiting",
                  Screen.IN_CALL: "in_call", Screen.ENDED: "idle", Screen.FAULT: "fault", Screen.SELFTEST: "in_call",
                  Screen.ENROL: "off",  # the button does nothing until the unit is enrolled
                  Screen.BOOKING: "idle"}
DEFAULT_LANGUAGE = "de"
# Devices without which no citizen can be served: while one is unplugged (appliance/fleet/watch.py) the
# kiosk shows the fault screen between visits instead of the idle screen. A visit already under way
# goes on: its call notices the device itself (audio-only without camera, ended without microphone).
DEVICE_FAULTS = ("camera", "microphone", "speaker")


class ControllerCore:
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
        self.updates = None  # appliance.update.agent.UpdateAgent: central's update offers
        self.scanner = None  # appliance.booking.scanner.QrScanner: the camera read for a booking's QR code
        self._missing: list[str] = []  # unplugged devices of DEVICE_FAULTS, in the order they went
        self._led("idle")

    # == inputs (thread-safe through the loop) ====================================
    def post(self, kind: str, value: Any = None) -> None:
        """Queue an event: press, long_press, choose, confirm, cancel, hangup, language,
        connected, disconnected, central, fault, timeout, rtc_state, guest_state, media_timeout, tick,
        selftest ("button" | "central"), selftest_view, selftest_end, device ((name, present))."""
        self._events.put_nowait((kind, value))

    async def run(self) -> None:
        while True:
            kind, value = await self._events.get()
            try:
                await self._handle(kind, value)  # machine.py: by kind, then by screen
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

    # == leaving and ending a visit (the citizen, the call's devices, IT) ============
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

    async def _end(self, reason: str) -> None:
        await self._close_call()
        self._forget_visit()
        if reason == "cancelled":
            self._enter(Screen.IDLE)
        else:
            self._enter(Screen.ENDED, ended_reason=reason)

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

    # == devices unplugged and plugged in again (appliance/fleet/watch.py) ===========
    def _on_device(self, device: str, present: bool) -> None:
        if device not in DEVICE_FAULTS:
            return
        if present:
            self._missing = [d for d in self._missing if d != device]
        elif device not in self._missing:
            self._missing.append(device)
        screen = self.view.screen
        if screen is Screen.FAULT and self.view.fault in DEVICE_FAULTS:
            self._enter(Screen.IDLE)  # back to idle, or the fault of another device still missing
        elif not present and screen in (Screen.IDLE, Screen.CHOOSING, Screen.CONSENT) and self._visit is None:
            self._enter(Screen.IDLE)  # nobody queued yet: out of order until it is back

    # == screens ===================================================================
    def _enter(self, screen: Screen, **changes: Any) -> None:
        """Switch screens. Everything visit-specific not given again is cleared. While a device is
        missing, the idle screen is the fault screen naming it."""
        if screen is Screen.IDLE and self._missing:
            screen, changes = Screen.FAULT, {"fault": self._missing[0]}
        if self.view.screen is Screen.SELFTEST and screen is not Screen.SELFTEST:
            self.selftest.stop()  # however the screen is left: camera and microphone off
        if self.view.screen is Screen.BOOKING and screen is not Screen.BOOKING and self.scanner is not None:
            self.scanner.stop()  # however the appointment screen is left: the camera goes off
        base = dict(selected=None, position=None, expected_wait_s=None, message=None, notice=None,
                    next_opening=None, ended_reason=None, fault=None, microphone_on=False, camera_on=False,
                    selftest=None, participants=(), booking=None)
        if screen is Screen.WAITING:
            base.update(position=self.view.position, expected_wait_s=self.view.expected_wait_s,
                        message=self.view.message)
        if screen is Screen.IDLE and self._visit is None:
            # the next citizen starts in the kiosk's language (German unless central set another)
            base["language"] = self.remote.default_language if self.remote is not None else DEFAULT_LANGUAGE
        self._show(screen=screen, **{**base, **changes})
        self._led(LED_FOR_SCREEN[screen])
        timeout = {Screen.CHOOSING: self.timeouts.choosing_s, Screen.CONSENT: self.timeouts.consent_s,
                   Screen.ENDED: self.timeouts.ended_s, Screen.BOOKING: self.timeouts.booking_s}.get(screen)
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
