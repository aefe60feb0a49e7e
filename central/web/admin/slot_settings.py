"""Admin: a department's appointment slots (length, citizens per slot, days ahead), on its form next to the hours."""
from __future__ import annotations

from central.bookings.slots import DAYS_AHEAD, PARALLEL, SLOT_MINUTES, SlotSettings
from central.web.admin import forms
from central.web.admin.forms import Translate

FIELDS = ("booking_on", "slot_minutes", "parallel", "days_ahead")


def values(settings: SlotSettings | None) -> dict[str, str]:
    """The form's fields for these settings (the defaults, switched off, for None)."""
    shown = settings or SlotSettings()
    return {"booking_on": "on" if settings else "", "slot_minutes": str(shown.slot_minutes),
            "parallel": str(shown.parallel), "days_ahead": str(shown.days_ahead)}


def read(form) -> dict[str, str]:  # noqa: ANN001 - MultiDictProxy
    return {name: forms.text(form, name, 10) for name in FIELDS}


def parse(v: dict[str, str], _: Translate) -> tuple[SlotSettings | None, dict[str, str]]:
    """The settings the form asks for (None: no online appointments), and errors by field."""
    errors: dict[str, str] = {}
    numbers: dict[str, int] = {}
    for name, (low, high), label in (("slot_minutes", SLOT_MINUTES, _("Length of an appointment")),
                                     ("parallel", PARALLEL, _("Appointments at the same time")),
                                     ("days_ahead", DAYS_AHEAD, _("Bookable days ahead"))):
        text = v[name].strip()
        if not text.isdigit() or not low <= int(text) <= high:
            errors[name] = _("%(field)s: enter a whole number from %(low)s to %(high)s.") % {
                "field": label, "low": low, "high": high}
        else:
            numbers[name] = int(text)
    if not v["booking_on"]:
        return None, {}  # switched off: the numbers are kept in the form but not checked
    if errors:
        return None, errors
    return SlotSettings(**numbers), {}
