"""The appointment screen: "I have an appointment", the booking's QR code or its typed code, then the visit.

From idle (a touch) or the office choice (the button cycles to "I have an appointment" after the
open offices; a long press chooses it), the kiosk shows the camera's picture and looks for the
booking's QR code (appliance/booking/scanner.py). Nothing read after ``Timeouts.booking_hint_s``:
the screen says how to hold it and offers the on-screen keypad. A code read or typed is looked up at
central (``booking.lookup``); what was found is shown (the appointment's time and office, or why
not and when it is) before the citizen confirms; then ``visit.request`` carries the code and the
visit waits as any other, ahead of walk-ins during its slot.

The code lives in the view and the visit only, in memory, and goes with them. See core.py for how
the controller is assembled.
"""
from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

from appliance.controller.core import ControllerCore
from appliance.controller.view import BookingScreen, Screen
from appliance.controller.visit import Visit
from protocol import messages as m
from protocol.booking_lookup import BookingFound, BookingLookup, normalise_booking_code

# Refusals the appointment screen explains (with the appointment's time where central gave it); any
# other refusal of a booked request is shown on the idle screen as a walk-in's would be.
BOOKING_PROBLEMS = ("booking_unknown", "booking_other_time", "closed")


class BookingFlow(ControllerCore):
    _booking_round = 0  # tells this scan's "nothing read yet" timer from those of earlier scans

    def _start_booking(self) -> None:
        # Offline, the idle screen already says the service is unreachable; without an office that takes
        # appointments, the kiosk does not offer them.
        if self.view.online and self._appointments_offered():
            self._scan()

    def _appointments_offered(self) -> bool:
        return any(d.bookable for d in self.view.departments)

    def _scan(self) -> None:
        """Camera on: look for the QR code (or straight to the keypad where no camera can read one)."""
        if self.scanner is None:
            self._type(hint="no_camera")
            return
        self._enter(Screen.BOOKING, booking=BookingScreen(step="scanning"))
        self._booking_round += 1
        asyncio.get_running_loop().call_later(self.timeouts.booking_hint_s, self.post, "booking_hint",
                                              self._booking_round)
        self.scanner.start()  # a camera that cannot start posts qr_fault

    def _type(self, hint: str | None = None) -> None:
        if self.scanner is not None:
            self.scanner.stop()
        self._enter(Screen.BOOKING, booking=BookingScreen(step="typing", hint=hint))

    def _hint(self, hint: str) -> None:
        """A hint on the current step; the citizen is still busy with it, so the screen's time starts anew."""
        self._show(booking=dataclasses.replace(self.view.booking, hint=hint))
        self._arm(self.timeouts.booking_s, Screen.BOOKING)

    async def _look_up(self, code: str) -> None:
        if self.scanner is not None:
            self.scanner.stop()
        self._enter(Screen.BOOKING, booking=BookingScreen(step="checking", code=code))
        self._arm(self.timeouts.request_s, Screen.BOOKING)  # no answer by then: "unreachable"
        await self._send(BookingLookup(type="booking.lookup", booking=code))

    def _problem(self, problem: str, **found: Any) -> None:
        self._enter(Screen.BOOKING, booking=BookingScreen(step="problem", problem=problem, **found))

    async def _booking(self, kind: str, value: Any) -> None:
        """An input while the appointment screen is shown."""
        booking = self.view.booking or BookingScreen()
        step = booking.step
        if kind in ("long_press", "cancel"):
            self._enter(Screen.IDLE)
        elif step == "scanning" and kind == "qr_code":
            await self._look_up(value)
        elif step == "scanning" and kind == "qr_other":
            if booking.hint != "not_a_booking":
                self._hint("not_a_booking")
        elif step == "scanning" and kind == "qr_fault":
            self._type(hint="no_camera")
        elif step == "scanning" and kind == "booking_hint" and value == self._booking_round:
            if booking.hint is None:
                self._show(booking=dataclasses.replace(booking, hint="no_code_seen"))
        elif kind == "booking_type" and step in ("scanning", "problem"):
            self._type()
        elif kind == "booking_scan" and step in ("typing", "problem"):
            self._scan()
        elif step == "typing" and kind == "booking_code":
            code = normalise_booking_code(value or "")
            await self._look_up(code) if code else self._hint("invalid_code")
        elif step == "found" and kind in ("press", "confirm"):
            await self._request_booked(booking)
        elif step == "problem" and kind == "press":
            # an unknown code may have been misread or mistyped: try again; otherwise done here
            self._scan() if booking.problem in ("booking_unknown", "rate_limited", "unreachable") else \
                self._enter(Screen.IDLE)

    async def _on_booking_answer(self, msg: BookingFound | m.Error) -> None:
        """Central's answer to the look-up; an answer to an earlier one (the citizen moved on) is dropped."""
        booking = self.view.booking
        if self.view.screen is not Screen.BOOKING or booking is None or booking.step != "checking":
            return
        if isinstance(msg, m.Error):
            self._problem("rate_limited" if msg.code == "rate_limited" else "unreachable", code=booking.code)
        elif msg.booking != booking.code:
            return
        elif msg.status == "now":
            self._enter(Screen.BOOKING, booking=BookingScreen(step="found", code=msg.booking, department=msg.department,
                                                              slot_start=msg.slot_start, slot_end=msg.slot_end))
        else:
            self._problem(msg.status, code=msg.booking, department=msg.department, slot_start=msg.slot_start,
                          slot_end=msg.slot_end)

    def _booking_timeout(self) -> None:
        booking = self.view.booking
        if booking is not None and booking.step == "checking":
            self._problem("unreachable", code=booking.code)
        else:
            self._enter(Screen.IDLE)  # nobody there any more: the next citizen starts afresh

    async def _request_booked(self, booking: BookingScreen) -> None:
        self._visit = Visit(department=booking.department, booking=booking.code)
        self._enter(Screen.WAITING, selected=booking.department)
        self._arm(self.timeouts.request_s, Screen.WAITING)
        await self._send(m.VisitRequest(type="visit.request", department=booking.department,
                                        language=self.view.language, booking=booking.code))

    def _booking_refused(self, visit: Visit, msg: m.VisitRefused) -> None:
        """Central refused the booked request after all (used meanwhile, the office closed that day, ...)."""
        if msg.reason in BOOKING_PROBLEMS:
            self._problem(msg.reason, code=visit.booking, department=visit.department, slot_start=msg.booked_for)
        else:
            self._enter(Screen.IDLE, notice=msg.reason, next_opening=msg.next_opening)
