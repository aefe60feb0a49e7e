"""Demo data: departments with realistic hours (one taking appointments), a clerk, an admin and one kiosk."""
from __future__ import annotations

import secrets

from central import passwords
from central.bookings.slots import SlotSettings
from central.hours import OfficeHours
from central.storage import Database

ALL_DAY = [["00:00", "23:59"]]
ALWAYS = {"weekly": {day: ALL_DAY for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}}

DEMO_DEPARTMENTS = [
    # (slug, name, languages, hours): the first two are always open so a demo works at any hour.
    ("buergerbuero", "Bürgerbüro", ["de", "en", "tr"], ALWAYS),
    ("standesamt", "Standesamt", ["de", "en"], ALWAYS),
    ("ordnungsamt", "Ordnungsamt", ["de"], {"weekly": {
        "mon": [["08:00", "12:00"], ["14:00", "16:00"]], "tue": [["08:00", "12:00"]],
        "thu": [["08:00", "12:00"], ["14:00", "18:00"]], "fri": [["08:00", "12:00"]]},
        "closed_days": ["2026-12-24", "2026-12-31"]}),
    ("buergermeister", "Bürgermeister", ["de"], {"weekly": {"thu": [["16:00", "18:00"]]}}),
]
DEMO_BOOKINGS = "standesamt"


async def seed_demo(db: Database) -> dict[str, str]:
    """Create the demo data; returns the credentials to print (they exist nowhere else)."""
    for order, (slug, name, languages, hours) in enumerate(DEMO_DEPARTMENTS):
        await db.save_department(slug, name, languages, OfficeHours.from_dict(hours), sort_order=order)
    clerk_pw, admin_pw = secrets.token_urlsafe(9), secrets.token_urlsafe(9)
    slugs = [d[0] for d in DEMO_DEPARTMENTS]
    await db.create_staff("sachbearbeiterin", "Frau Demir", passwords.hash_password(clerk_pw), "clerk", slugs)
    await db.create_staff("admin", "IT-Administration", passwords.hash_password(admin_pw), "admin", [])
    _, kiosk_token = await db.create_kiosk("Rathaus Musterdorf, Foyer")
    # Appointments online: the Standesamt (open at any hour in the demo) has 15-minute slots, two at a time.
    await db.bookings.save_settings(DEMO_BOOKINGS, SlotSettings(slot_minutes=15, parallel=2, days_ahead=14))
    return {"clerk_user": "sachbearbeiterin", "clerk_password": clerk_pw, "admin_user": "admin",
            "admin_password": admin_pw, "kiosk_token": kiosk_token}
