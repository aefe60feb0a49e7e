"""Appointment slots in the admin area: set on the department's form next to its office hours."""
from __future__ import annotations

import html

from central.bookings.slots import SlotSettings
from tests.central.test_admin import department_form, site  # noqa: F401 - the fixture

SLOTS = {"booking_on": "on", "slot_minutes": "20", "parallel": "3", "days_ahead": "30"}


async def test_admin_sets_slots_next_to_the_hours_and_switches_them_off(site):  # noqa: F811 - the fixture
    r = await site.post("/admin/departments/new", department_form() | SLOTS)
    assert r.status == 303, await r.text()
    assert await site.db.bookings.settings() == {"buergeramt": SlotSettings(20, 3, 30)}
    edit = await (await site.client.get("/admin/departments/buergeramt/edit")).text()
    assert 'name="booking_on" checked' in edit and 'name="slot_minutes" value="20"' in edit

    off = department_form() | SLOTS | {"booking_on": ""}
    assert (await site.post("/admin/departments/buergeramt/edit", off)).status == 303
    assert await site.db.bookings.settings() == {}


async def test_bad_slot_numbers_give_400_and_change_nothing(site):  # noqa: F811 - the fixture
    for field, value in (("slot_minutes", "2"), ("parallel", "0"), ("days_ahead", "1000"), ("slot_minutes", "x")):
        r = await site.post("/admin/departments/new", department_form() | SLOTS | {field: value})
        text = html.unescape(await r.text())
        assert r.status == 400 and "enter a whole number from" in text, (field, value)
        assert f'name="{field}" value="{value}"' in text  # the input is kept
    assert await site.db.departments() == [] and await site.db.bookings.settings() == {}
    # Switched off, the numbers are not checked.
    r = await site.post("/admin/departments/new", department_form() | {"booking_on": "", "slot_minutes": "x",
                                                                         "parallel": "", "days_ahead": ""})
    assert r.status == 303


async def test_deleting_a_department_removes_its_slots(site):  # noqa: F811 - the fixture
    await site.post("/admin/departments/new", department_form() | SLOTS)
    assert (await site.post("/admin/departments/buergeramt/delete", {})).status == 303
    assert await site.db.bookings.settings() == {}
