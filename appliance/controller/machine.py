"""The kiosk controller: every input becomes an event, handled one at a time.

Inputs come from three directions — the call button (gpiozero's thread), the
kiosk page (Flask's threads) and central (the WebSocket) — so they are queued
and applied in order by one task; no two handlers ever interleave.

Nothing of a visit outlives it: when a visit ends, its id, resume token,
position and the clerk's message are dropped and the language returns to German
for the next citizen. All of it is held in memory only, never on disk.

This module only dispatches each event to its role; the roles are mixins, one
module each (the map is in core.py): the screens before a visit (screens.py),
central's messages (central_messages.py), the call's media (media.py), and the
shared state, screens and leaving (core.py).
"""
from __future__ import annotations

from typing import Any

from appliance.controller.central_messages import CentralMessages
from appliance.controller.screens import ScreenFlow
from appliance.controller.view import Screen
from appliance.controller.visit import Timeouts
from protocol import messages as m
from protocol.booking_lookup import BookingFound

__all__ = ["Controller", "Timeouts"]


class Controller(CentralMessages, ScreenFlow):
    """The one object the service, the kiosk page and appliance/fleet talk to."""

    async def _handle(self, kind: str, value: Any) -> None:
        screen = self.view.screen
        if kind == "tick":
            if value is not None:
                value.set()  # the watchdog's probe: handling it proves the loop and the controller are alive
            return
        if kind == "device":  # appliance/fleet/watch.py: unplugged or back, also while the screen is dark
            self._on_device(*value)
            return
        if self.remote is not None and self.remote.wake(kind):
            return  # the screen was dark outside office hours: this press only woke it
        if kind == "central":
            if isinstance(value, BookingFound) or (isinstance(value, m.Error) and value.ref == "booking.lookup"):
                await self._on_booking_answer(value)  # booking.py
            else:
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
        elif kind == "guest_state":
            await self._on_guest_state(*value)
        elif kind == "media_timeout":
            await self._on_media_timeout(value)
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
        elif screen is Screen.BOOKING:
            await self._booking(kind, value)
        elif screen is Screen.WAITING:
            if kind in ("long_press", "cancel") and self._visit and self._visit.visit_id:
                await self._leave(in_call=False)
        elif screen is Screen.IN_CALL:
            if kind in ("press", "long_press", "hangup") and self._visit and self._visit.visit_id:
                await self._leave(in_call=True)
        elif screen is Screen.ENDED and kind in ("press", "long_press"):
            self._enter(Screen.IDLE)
