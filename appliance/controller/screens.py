"""The citizen's way to a visit on the kiosk: idle, choosing a department, consent, and screen timeouts.

The button cycles through the open departments (then "I have an appointment", booking.py) and a
long press chooses; the touch screen chooses directly. See core.py for how the controller is assembled.
"""
from __future__ import annotations

from typing import Any

from appliance.controller.booking import BookingFlow
from appliance.controller.view import APPOINTMENT, Screen
from appliance.controller.visit import Visit
from protocol import messages as m


class ScreenFlow(BookingFlow):
    async def _idle(self, kind: str, value: Any) -> None:
        open_ = [d for d in self.view.departments if d.open]
        if kind == "choose":
            if self._is_open(value):
                self._enter(Screen.CONSENT, selected=value)
        elif kind == "booking":
            self._start_booking()
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
        # The button cycles through the open offices, then "I have an appointment" where an office takes them.
        entries = [d.slug for d in self.view.departments if d.open]
        entries += [APPOINTMENT] if self._appointments_offered() else []
        if kind == "press" and entries:
            i = entries.index(self.view.selected) if self.view.selected in entries else -1
            self._enter(Screen.CHOOSING, selected=entries[(i + 1) % len(entries)])  # re-arms the timeout
        elif (kind == "long_press" and self.view.selected == APPOINTMENT) or kind == "booking":
            self._start_booking()
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
        elif screen is Screen.BOOKING:
            self._booking_timeout()
        else:
            self._enter(Screen.IDLE)

    def _is_open(self, slug: str | None) -> bool:
        return any(d.slug == slug and d.open for d in self.view.departments)

    def _earliest_opening(self) -> str | None:
        times = sorted(d.next_opening for d in self.view.departments if d.next_opening)
        return times[0] if times else None
