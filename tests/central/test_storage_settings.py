"""Kiosk settings (central.storage.kiosk_settings) and the audit log (central.storage.audit),
once on SQLite and once on a real PostgreSQL server."""
from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from central.storage import schema as t
from central.storage.database import Database
from central.storage.kiosk_settings import KIOSK_LANGUAGES, SettingsError
from tests.central.test_storage import count, database_url

KIOSK_TRANSLATIONS = Path(__file__).parents[2] / "appliance/kiosk/translations"

SLUGS = ["buergerbuero", "standesamt", "ordnungsamt"]


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_kiosk_settings_and_audit_contract(backend, tmp_path, request):
    async with database_url(backend, tmp_path, request) as url:
        db = await Database.open(url)
        try:
            await settings_contract(db)
            await audit_contract(db)
        finally:
            await db.close()
        db = await Database.open(url)  # committed: a new process sees the same
        try:
            kiosk_id = (await db.kiosks())[0].id
            assert (await db.kiosk_settings.effective(kiosk_id, "x", SLUGS)).volume_pct == 40
            assert len(await db.audit.recent()) == 3 and len(await db.kiosks()) == 3
        finally:
            await db.close()


async def settings_contract(db: Database) -> None:
    store = db.kiosk_settings
    a, _ = await db.create_kiosk("Bücherei Musterdorf")
    b, _ = await db.create_kiosk("Rathaus")
    # Nothing set: the built-in defaults, every department in central's order, location from the kiosk.
    first = await store.effective(a, "Bücherei Musterdorf", SLUGS)
    assert first.model_dump() == {
        "version": 1, "location": "Bücherei Musterdorf", "departments": SLUGS, "default_language": "de",
        "languages": ["de", "en", "tr", "ar", "uk", "ru"], "volume_pct": 70, "mic_gain_db": 0,
        "brightness_pct": 100, "screen_off_outside_hours": False, "relay_only": False, "call_upload_kbit_s": 2000}
    assert (await store.defaults())["departments"] is None and await store.overrides(a) == {}

    # One kiosk's own values: only it changes, and its version grows.
    await store.update(a, volume_pct=40, departments=["standesamt", "buergerbuero"], location="Bücherei Nord")
    assert [k.location for k in await db.kiosks() if k.id == a] == ["Bücherei Nord"]
    mine = await store.effective(a, "Bücherei Nord", SLUGS)
    theirs = await store.effective(b, "Rathaus", SLUGS)
    assert (mine.version, mine.volume_pct, mine.departments) == (2, 40, ["standesamt", "buergerbuero"])
    assert (theirs.version, theirs.volume_pct, theirs.departments) == (1, 70, SLUGS)
    assert await store.overrides(a) == {"volume_pct": 40, "departments": ["standesamt", "buergerbuero"]}

    # All kiosks: both versions grow; a kiosk's own value wins over the all-kiosks one.
    await store.update(None, volume_pct=55, brightness_pct=60, screen_off_outside_hours=True)
    many = await store.effective_many({a: "Bücherei Nord", b: "Rathaus"}, SLUGS)
    assert (many[a].version, many[a].volume_pct, many[a].brightness_pct) == (3, 40, 60)
    assert (many[b].version, many[b].volume_pct, many[b].screen_off_outside_hours) == (2, 55, True)
    assert (await store.defaults())["volume_pct"] == 55

    # A department deleted after it was picked drops out; the admin's order stays.
    assert (await store.effective(a, "x", ["buergerbuero", "ordnungsamt"])).departments == ["buergerbuero"]
    # A change made elsewhere (departments edited) counts too.
    await store.touch()
    assert (await store.effective(b, "Rathaus", SLUGS)).version == 3

    # Removing a kiosk's own value: it follows the all-kiosks value again.
    await store.update(a, volume_pct=None)
    assert (await store.effective(a, "x", SLUGS)).volume_pct == 55
    await store.update(a, volume_pct=40)

    # Languages: only the kiosk's six, each once, the default among them.
    await store.update(None, languages=["tr", "de"], default_language="tr")
    assert (await store.effective(b, "x", SLUGS)).languages == ["tr", "de"]
    bad = [dict(volume_pct=101), dict(volume_pct="70"), dict(mic_gain_db=-21), dict(brightness_pct=9),
           dict(call_upload_kbit_s=299), dict(call_upload_kbit_s=20001),
           dict(languages=["de", "fr"]), dict(languages=[]), dict(languages=["de", "de"]),
           dict(default_language="en"), dict(departments=["a", "a"]), dict(departments=["Not a slug"]),
           dict(screen_off_outside_hours="yes"), dict(colour="red"), dict(location="")]
    before = await store.effective_many({a: "x", b: "x"}, SLUGS)
    for values in bad:
        with pytest.raises(SettingsError):
            await store.update(a, **values)
    with pytest.raises(SettingsError):
        await store.update(None, location="Everywhere")
    assert await store.effective_many({a: "x", b: "x"}, SLUGS) == before  # nothing changed, not even versions

    # Two admins saving at once: both changes count (the version grows by two).
    version = before[b].version
    await asyncio.gather(store.update(b, mic_gain_db=5), store.update(b, brightness_pct=80))
    after = await store.effective(b, "x", SLUGS)
    assert (after.version, after.mic_gain_db, after.brightness_pct) == (version + 2, 5, 80)
    assert await count(db, t.kiosk_settings) == 3
    # The versions alone (what the watch compares), for kiosks with and without their own row.
    c, _ = await db.create_kiosk("Turnhalle")
    many = await store.effective_many({a: "x", b: "x", c: "x"}, SLUGS)
    assert await store.versions([a, b, c]) == {k: s.version for k, s in many.items()}


async def audit_contract(db: Database) -> None:
    admin = await db.create_staff("admin", "IT", "hash", "admin", [])
    await db.audit.record(admin, "settings.kiosk", "kiosk:1", "volume_pct=40")
    await db.audit.record(admin, "kiosk.action", "kiosk:2", "reboot force")
    await db.audit.record(None, "kiosk.revoke", "kiosk:1", "x" * 1000)
    entries = await db.audit.recent()
    assert [(e.staff_name, e.action, e.target) for e in entries] == [
        ("–", "kiosk.revoke", "kiosk:1"), ("admin", "kiosk.action", "kiosk:2"), ("admin", "settings.kiosk", "kiosk:1")]
    assert entries[1].staff_id == admin and len(entries[0].detail) == 300
    assert entries[0].at >= entries[1].at >= entries[2].at > 0
    assert [e.action for e in await db.audit.recent(target="kiosk:1")] == ["kiosk.revoke", "settings.kiosk"]
    assert len(await db.audit.recent(limit=1)) == 1


def test_central_offers_the_languages_the_kiosk_page_has():
    """Every language central lets IT choose has a translated kiosk page."""
    shipped = {p.parent.parent.name for p in KIOSK_TRANSLATIONS.glob("*/LC_MESSAGES/*.po")}
    assert set(KIOSK_LANGUAGES) <= shipped, f"no kiosk translation for {set(KIOSK_LANGUAGES) - shipped}"
