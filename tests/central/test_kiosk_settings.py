"""Remote settings and actions through a running central: what the kiosk gets after welcome and
at once on every change, the admin's forms (CSRF, bad input), actions with the "force" confirmation,
and an audit entry for every admin action."""
from __future__ import annotations

import asyncio
import datetime as dt
import html
import re

import pytest

from central.fleet import settings as fleet_settings
from tests.central.conftest import Central, Peer

CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')
ALL_SLUGS = ["buergerbuero", "standesamt", "ordnungsamt", "buergermeister"]


class Admin:
    """A logged-in admin posting the forms as a browser would (English pages)."""

    def __init__(self, central: Central, session) -> None:  # noqa: ANN001
        self.central, self.session = central, session
        session.cookie_jar.update_cookies({"ak_lang": "en"})

    async def get(self, path: str) -> tuple[int, str]:
        async with self.session.get(self.central.url + path) as r:
            return r.status, await r.text()

    async def post(self, path: str, data: list[tuple[str, str]] | dict, *, csrf: bool = True) -> tuple[int, str, str]:
        items = list(data.items()) if isinstance(data, dict) else list(data)
        if csrf:
            _, page = await self.get("/console")  # the logout form carries it, for clerks too
            items.append(("csrf_token", CSRF_RE.search(page)[1]))
        async with self.session.post(self.central.url + path, data=items, allow_redirects=False) as r:
            return r.status, r.headers.get("Location", ""), await r.text()


@pytest.fixture
async def admin(central):
    return Admin(central, await central.login("admin", central.credentials["admin_password"]))


def form(**changes) -> list[tuple[str, str]]:
    """The per-kiosk form as sent with its defaults, changed by ``changes`` (lists become repeated fields)."""
    values = {"location": "Rathaus Musterdorf, Foyer", "departments_mode": "all", "default_language": "de",
              "language": ["de", "en", "tr", "ar", "uk", "ru"], "volume_pct": "70", "mic_gain_db": "0",
              "brightness_pct": "100", "call_upload_kbit_s": "2000", **changes}
    out = []
    for name, value in values.items():
        out += [(name, v) for v in value] if isinstance(value, list) else [(name, value)]
    return out


def kiosk_id(central: Central) -> int:
    return int(central.credentials["kiosk_token"].split(".")[0])


async def test_kiosk_gets_its_settings_after_welcome_and_at_once_on_each_change(central, admin):
    kiosk = await central.kiosk()
    assert kiosk.settings == {"version": 1, "location": "Rathaus Musterdorf, Foyer", "departments": ALL_SLUGS,
                              "default_language": "de", "languages": ["de", "en", "tr", "ar", "uk", "ru"],
                              "volume_pct": 70, "mic_gain_db": 0, "brightness_pct": 100,
                              "screen_off_outside_hours": False, "relay_only": False, "call_upload_kbit_s": 2000}
    other = await central.new_kiosk("Bücherei")
    kid = kiosk_id(central)

    status, location, _ = await admin.post(f"/admin/fleet/{kid}/settings", form(
        location="Bücherei Nord", departments_mode="chosen", department=["standesamt", "buergerbuero"],
        order_standesamt="1", order_buergerbuero="2", default_language="en", language=["de", "en", "tr"],
        volume_pct="40", mic_gain_db="-6", brightness_pct="60", screen_off_outside_hours="on",
        call_upload_kbit_s="1200"))
    assert (status, location) == (303, f"/admin/fleet/{kid}?done=settings-saved#kiosk-settings")
    got = (await kiosk.recv("kiosk.settings"))["settings"]
    assert got == {"version": 2, "location": "Bücherei Nord", "departments": ["standesamt", "buergerbuero"],
                   "default_language": "en", "languages": ["de", "en", "tr"], "volume_pct": 40, "mic_gain_db": -6,
                   "brightness_pct": 60, "screen_off_outside_hours": True, "relay_only": False,
                   "call_upload_kbit_s": 1200}
    assert await other.quiet() == []  # only this kiosk's settings changed

    # The kiosk acknowledges; the page shows the version it confirmed.
    await kiosk.send(type="kiosk.settings.applied", version=2)
    await kiosk.quiet(0.1)
    _, page = await admin.get(f"/admin/fleet/{kid}/settings")
    assert "Settings version 2; the kiosk confirmed version 2." in html.unescape(page)

    # The new location goes to clerks with the next visit; a department not offered is refused.
    clerk = await central.clerk()
    await kiosk.send(type="visit.request", department="ordnungsamt", language="de")
    refused = await kiosk.recv("visit.refused")
    assert refused["reason"] == "unknown_department"
    await kiosk.send(type="visit.request", department="standesamt", language="de")
    await kiosk.recv("visit.queued")
    assert (await clerk.recv("queue.joined"))["visit"]["kiosk_location"] == "Bücherei Nord"

    # All kiosks: every connected kiosk hears at once; this kiosk keeps its own volume.
    status, _, _ = await admin.post("/admin/fleet/settings", form(volume_pct="55", brightness_pct="80"))
    assert status == 303
    mine, theirs = (await kiosk.recv("kiosk.settings"))["settings"], (await other.recv("kiosk.settings"))["settings"]
    assert (mine["version"], mine["volume_pct"], mine["brightness_pct"]) == (3, 40, 60)
    assert (theirs["version"], theirs["volume_pct"], theirs["brightness_pct"]) == (2, 55, 80)

    # Back to the settings for all kiosks.
    assert (await admin.post(f"/admin/fleet/{kid}/settings/reset", {}))[0] == 303
    mine = (await kiosk.recv("kiosk.settings"))["settings"]
    assert (mine["version"], mine["volume_pct"], mine["departments"], mine["location"]) == (
        4, 55, ALL_SLUGS, "Bücherei Nord")

    # A reconnecting kiosk gets the current settings after its welcome.
    await kiosk.ws.close()
    again = await central.kiosk()
    assert again.settings == mine


async def test_department_changes_reach_kiosks_that_offer_all(central, admin):
    kiosk = await central.kiosk()
    status, _, _ = await admin.post("/admin/departments/buergermeister/delete", {})
    assert status == 303
    got = (await kiosk.recv("kiosk.settings"))["settings"]
    assert (got["version"], got["departments"]) == (2, ALL_SLUGS[:3])


@pytest.mark.parametrize("changes, message", [
    (dict(volume_pct="101"), "Enter a whole number from 0 to 100."),
    (dict(volume_pct="loud"), "Enter a whole number from 0 to 100."),
    (dict(mic_gain_db="-30"), "Enter a whole number from -20 to 20."),
    (dict(brightness_pct="5"), "Enter a whole number from 10 to 100."),
    (dict(call_upload_kbit_s="100"), "Enter a whole number from 300 to 20000."),
    (dict(call_upload_kbit_s="2 Mbit"), "Enter a whole number from 300 to 20000."),
    (dict(language=[]), "Offer at least one language."),
    (dict(language=["de", "en"], default_language="tr"), "must be one of the languages offered"),
    (dict(language=["fr"]), "Offer at least one language."),
    (dict(departments_mode="chosen", department=[]), "Pick at least one department"),
    (dict(departments_mode="chosen", department=["standesamt"], order_standesamt="first"), "whole number"),
    (dict(location=""), "Please fill in this field."),
])
async def test_bad_input_is_refused_with_a_message_and_changes_nothing(central, admin, changes, message):
    kiosk = await central.kiosk()
    kid = kiosk_id(central)
    status, _, page = await admin.post(f"/admin/fleet/{kid}/settings", form(**changes))
    assert status == 400 and message in html.unescape(page)
    assert await kiosk.quiet() == []
    assert await central.db.kiosk_settings.overrides(kid) == {}
    assert await central.db.audit.recent() == []


async def test_forms_need_the_csrf_token_and_an_admin(central, admin):
    kiosk = await central.kiosk()
    kid = kiosk_id(central)
    for path in (f"/admin/fleet/{kid}/settings", "/admin/fleet/settings", f"/admin/fleet/{kid}/action"):
        status, _, _ = await admin.post(path, form(volume_pct="10", action="reboot"), csrf=False)
        assert status == 403
    clerk = Admin(central, await central.login("sachbearbeiterin", central.credentials["clerk_password"]))
    assert (await clerk.get("/admin/audit"))[0] == 403
    assert (await clerk.post(f"/admin/fleet/{kid}/settings", form(volume_pct="10")))[0] == 403
    assert (await admin.get("/admin/fleet/999/settings"))[0] == 404
    assert await kiosk.quiet() == [] and await central.db.audit.recent() == []


async def test_actions_ask_before_interrupting_a_visit_and_show_the_outcome(central, admin):
    kiosk = await central.kiosk()
    kid = kiosk_id(central)
    path = f"/admin/fleet/{kid}/action"

    # Idle: sent at once, not forced.
    status, location, _ = await admin.post(path, {"action": "selftest"})
    assert (status, location) == (303, f"/admin/fleet/{kid}?done=action-sent#kiosk-settings")
    _, page = await admin.get(f"/admin/fleet/{kid}?done=action-sent")  # the fleet's page of the kiosk shows it
    assert "The action has been sent to the kiosk." in page and 'data-testid="actions-sent"' in page
    sent = await kiosk.recv("kiosk.action")
    assert (sent["action"], sent["force"]) == ("selftest", False)
    _, page = await admin.get(f"/admin/fleet/{kid}/settings")
    assert 'data-outcome="sent"' in page
    await kiosk.send(type="kiosk.action.result", action_id=sent["action_id"], outcome="started")
    await kiosk.quiet(0.1)
    _, page = await admin.get(f"/admin/fleet/{kid}/settings")
    assert 'data-outcome="started"' in page

    # A citizen waits: the page asks first and sends nothing ...
    await kiosk.send(type="visit.request", department="buergerbuero", language="de")
    await kiosk.recv("visit.queued")
    status, _, page = await admin.post(path, {"action": "reboot"})
    assert status == 200 and 'data-testid="confirm-force"' in page
    assert await kiosk.quiet() == []
    # ... and only the confirmation sends it, forced.
    status, _, _ = await admin.post(path, {"action": "reboot", "force": "yes"})
    assert status == 303
    sent = await kiosk.recv("kiosk.action")
    assert (sent["action"], sent["force"]) == ("reboot", True)

    # Unknown action, kiosk offline: a message, nothing sent.
    status, _, page = await admin.post(path, {"action": "format_disk"})
    assert status == 400 and "Choose one of the actions offered." in page
    await kiosk.ws.close()
    for _ in range(500):  # central notices the closed socket
        if kid not in central.hub.kiosks:
            break
        await asyncio.sleep(0.01)
    status, _, page = await admin.post(path, {"action": "restart"})
    assert status == 409 and "not connected" in page
    assert [e.action for e in await central.db.audit.recent()] == ["kiosk.reboot", "kiosk.selftest"]
    assert (await central.db.audit.recent())[0].detail == "forced"


async def test_every_admin_action_is_in_the_audit_log(central, admin):
    kiosk = await central.kiosk()
    kid = kiosk_id(central)
    await admin.post(f"/admin/fleet/{kid}/settings", form(volume_pct="30"))
    await admin.post("/admin/fleet/settings", form(brightness_pct="50"))
    await admin.post(f"/admin/fleet/{kid}/settings/reset", {})
    await admin.post(f"/admin/fleet/{kid}/action", {"action": "restart"})
    await admin.post("/admin/kiosks/new", {"location": "Turnhalle"})
    new_id = max(k.id for k in await central.db.kiosks())
    await admin.post(f"/admin/kiosks/{new_id}/token", {})
    await admin.post(f"/admin/kiosks/{new_id}/revoke", {})
    entries = await central.db.audit.recent()
    assert [(e.staff_name, e.action, e.target) for e in reversed(entries)] == [
        ("admin", "settings.kiosk", f"kiosk:{kid}"), ("admin", "settings.all", "kiosks:all"),
        ("admin", "settings.reset", f"kiosk:{kid}"), ("admin", "kiosk.restart", f"kiosk:{kid}"),
        ("admin", "kiosk.create", f"kiosk:{new_id}"), ("admin", "kiosk.token", f"kiosk:{new_id}"),
        ("admin", "kiosk.revoke", f"kiosk:{new_id}")]
    assert entries[-1].detail == "volume_pct=30" and entries[-2].detail == "brightness_pct=50"
    assert all(kiosk_token_part not in e.detail for e in entries
               for kiosk_token_part in [central.credentials["kiosk_token"].split(".")[1]])

    status, page = await admin.get("/admin/audit")
    page = html.unescape(page)
    assert status == 200
    for text in ("Kiosk settings changed", "Settings for all kiosks changed", "Kiosk software restarted",
                 "Kiosk registered", "New kiosk token issued", "Kiosk revoked", "Turnhalle", "volume_pct=30"):
        assert text in page
    assert page.index("Kiosk revoked") < page.index("Kiosk settings changed")  # newest first
    assert isinstance(kiosk, Peer)


async def test_kiosks_follow_changes_made_elsewhere_and_offices_opening_or_closing(central):
    kiosk = await central.kiosk()
    kid = kiosk_id(central)
    central.clock.fixed = dt.datetime(2026, 12, 7, 9, 0, tzinfo=dt.UTC)  # a Monday morning: Ordnungsamt open
    opened = fleet_settings.open_state(central.hub)

    # Changed through another central process: the next round of the watch sends it.
    await central.db.kiosk_settings.update(kid, volume_pct=20)
    opened = await fleet_settings.check(central.app, opened)
    assert (await kiosk.recv("kiosk.settings"))["settings"]["volume_pct"] == 20
    opened = await fleet_settings.check(central.app, opened)
    assert await kiosk.quiet() == []  # nothing changed since

    # The Ordnungsamt closes for the day: every kiosk hears it on its open connection.
    central.clock.fixed = dt.datetime(2026, 12, 7, 17, 0, tzinfo=dt.UTC)
    await fleet_settings.check(central.app, opened)
    welcome = await kiosk.recv("welcome")
    assert {d["slug"]: d["open"] for d in welcome["departments"]}["ordnungsamt"] is False


async def test_reports_before_the_resume_do_not_end_the_kiosks_visit(central):
    """A unit back after a dropped connection may report health or applied settings before its
    controller resumes the visit: that is no sign it restarted, so the visit stays."""
    kiosk = await central.kiosk()
    await kiosk.send(type="visit.request", department="buergerbuero", language="de")
    queued = await kiosk.recv("visit.queued")
    await kiosk.ws.close()
    again = await central.kiosk()
    await again.send(type="kiosk.settings.applied", version=again.settings["version"])
    await again.send(type="visit.resume", visit_id=queued["visit_id"], resume_token=queued["resume_token"])
    resumed = await again.recv("visit.resumed")
    assert (resumed["visit_id"], resumed["state"], resumed["position"]) == (queued["visit_id"], "waiting", 1)
    # A ping first still means the unit restarted and kept nothing: that visit ends at once.
    await again.ws.close()
    third = await central.kiosk()
    await third.send(type="ping")
    await third.recv("pong")
    assert central.hub.rooms.of_kiosk(kiosk_id(central)) is None


async def test_a_kiosk_hears_only_of_the_departments_it_offers(central, admin):
    # Claimed a moment ago, a unit has no settings of its own yet: it shows the welcome's departments
    # until its settings follow, so the welcome must already be limited to what it will offer.
    kiosk = await central.kiosk()
    kid = kiosk_id(central)
    status, _, _ = await admin.post(f"/admin/fleet/{kid}/settings", form(
        departments_mode="chosen", department=["standesamt"], order_standesamt="1"))
    assert status == 303
    assert (await kiosk.recv("kiosk.settings"))["settings"]["departments"] == ["standesamt"]
    assert [d["slug"] for d in (await kiosk.recv("welcome"))["departments"]] == ["standesamt"]

    await kiosk.ws.close()
    ws = await central.session.ws_connect(central.url.replace("http", "ws") + "/ws/kiosk",
                                          headers={"Authorization": f"Bearer {central.credentials['kiosk_token']}"})
    again = Peer(ws)
    welcome = await again.recv()
    assert welcome["type"] == "welcome" and [d["slug"] for d in welcome["departments"]] == ["standesamt"]
    assert (await again.recv())["type"] == "kiosk.settings"  # always right after the welcome

    # Offering more again brings their state along with the settings.
    status, _, _ = await admin.post(f"/admin/fleet/{kid}/settings", form())
    assert status == 303
    assert (await again.recv("kiosk.settings"))["settings"]["departments"] == ALL_SLUGS
    assert [d["slug"] for d in (await again.recv("welcome"))["departments"]] == ALL_SLUGS
