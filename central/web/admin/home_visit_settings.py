"""Admin: a department's visits from home (its telephone number for citizens, how many visitors at a time),
on its form next to the office hours and the appointments."""
from __future__ import annotations

import re

from central.storage.database import Department
from central.storage.home_visits import PHONE_MAX
from central.web.admin import forms
from central.web.admin.forms import Translate

FIELDS = ("phone", "online_cap")
CAP_MAX = 1000
PHONE_RE = re.compile(r"^\+?[0-9 ()/-]{3,40}$")


def values(department: Department | None) -> dict[str, str]:
    if department is None:
        return {"phone": "", "online_cap": ""}
    return {"phone": department.phone,
            "online_cap": "" if department.online_cap is None else str(department.online_cap)}


def read(form) -> dict[str, str]:  # noqa: ANN001 - MultiDictProxy
    return {name: forms.text(form, name, 60) for name in FIELDS}


def parse(v: dict[str, str], _: Translate) -> tuple[tuple[str, int | None], dict[str, str]]:
    """(phone, cap or None for central's setting), and errors by field."""
    errors: dict[str, str] = {}
    phone, cap_text = v["phone"].strip(), v["online_cap"].strip()
    if phone and (len(phone) > PHONE_MAX or not PHONE_RE.match(phone)):
        errors["phone"] = _("Telephone number: digits, spaces and + ( ) / - only, e.g. +49 30 1234-567.")
    cap = None
    if cap_text:
        if not cap_text.isdigit() or int(cap_text) > CAP_MAX:
            errors["online_cap"] = _("%(field)s: enter a whole number from %(low)s to %(high)s.") % {
                "field": _("Visitors from home at a time"), "low": 0, "high": CAP_MAX}
        else:
            cap = int(cap_text)
    return (phone, cap), errors
