"""When the unit may install an update and restart: never while anybody uses it, by default only
while every department it offers is closed.

"Closed" is the rule the dark screen follows (view.openings_while_closed): connected to central,
at least one department offered, and none of them open now. Without that knowledge (offline, no
departments) it is never "outside hours": a unit that cannot tell waits rather than restart while
an office may be open.
"""
from __future__ import annotations

import datetime as dt

from appliance.controller.view import Screen, View, openings_while_closed


def every_department_closed(view: View, now: dt.datetime) -> bool:
    return openings_while_closed(view, now) is not None


def nobody_uses(view: View, busy: bool) -> bool:
    """The idle screen (or the enrolment screen) and no visit anywhere in the controller."""
    return not busy and view.screen in (Screen.IDLE, Screen.ENROL)


def window_open(window: str, view: View, busy: bool, now: dt.datetime) -> bool:
    """``now``: as soon as nobody uses the unit; ``outside_hours``: also every department closed."""
    if not nobody_uses(view, busy):
        return False
    return window == "now" or every_department_closed(view, now)
