"""The admin area through real HTTP: login, CSRF, forms, validation and what the rest of central sees."""
from __future__ import annotations

import datetime as dt
import html
import re
from dataclasses import dataclass

import pytest
import pytest_asyncio
from aiohttp.test_utils import TestClient

from central import passwords
from central.app import create_app
from central.config import Config
from central.i18n import gettext_for
from central.web.admin import forms

ADMIN_PW = "admin password 1"
CLERK_PW = "clerk password 1"
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class Site:
    client: TestClient
    admin_id: int
    clerk_id: int

    @property
    def app(self):
        return self.client.server.app

    @property
    def db(self):
        return self.app["db"]

    async def login(self, username: str, password: str) -> None:
        self.client.session.cookie_jar.clear()
        # English pages, so assertions do not depend on the state of the German catalogue.
        self.client.session.cookie_jar.update_cookies({"ak_lang": "en"})
        page = await self.client.get("/login")
        csrf = CSRF_RE.search(await page.text())[1]
        r = await self.client.post("/login", data={"username": username, "password": password, "csrf_token": csrf},
                                   allow_redirects=False)
        assert r.status == 302, await r.text()

    async def csrf(self, path: str = "/admin") -> str:
        r = await self.client.get(path)
        assert r.status == 200
        return CSRF_RE.search(await r.text())[1]

    async def post(self, path: str, data: dict | list, *, csrf: bool = True):
        token = await self.csrf() if csrf else None
        items = list(data.items()) if isinstance(data, dict) else list(data)
        if token:
            items.append(("csrf_token", token))
        return await self.client.post(path, data=items, allow_redirects=False)


@pytest_asyncio.fixture
async def site(aiohttp_client, tmp_path) -> Site:
    app = create_app(Config(database_url=f"sqlite:///{tmp_path}/c.db", secure_cookies=False))
    client = await aiohttp_client(app)
    db = app["db"]  # exists only once the app has started
    admin_id = await db.create_staff("chefin", "Die Chefin", passwords.hash_password(ADMIN_PW), "admin", [])
    clerk_id = await db.create_staff("clerk", "Herr Clerk", passwords.hash_password(CLERK_PW), "clerk", [])
    s = Site(client, admin_id, clerk_id)
    await s.login("chefin", ADMIN_PW)
    return s


def department_form(**overrides) -> dict:
    form = {"slug": "buergeramt", "name": "Bürgeramt", "languages": "de, EN, tr", "sort_order": "",
            "hours": "Mo: 08:00-12:00, 14:00-18:00\nDi: 08:00-12:00\nSa: closed", "closed_days": "2026-12-24\n"}
    return form | overrides


# -- access --------------------------------------------------------------------------

async def test_clerk_gets_403_and_anonymous_is_sent_to_login(site):
    await site.login("clerk", CLERK_PW)
    for path in ("/admin", "/admin/departments", "/admin/staff", "/admin/kiosks", "/admin/staff/1/edit"):
        assert (await site.client.get(path, allow_redirects=False)).status == 403, path
    r = await site.post("/admin/kiosks/new", {"location": "Foyer"}, csrf=False)
    assert r.status == 403
    site.client.session.cookie_jar.clear()
    r = await site.client.get("/admin/departments", allow_redirects=False)
    assert r.status == 302 and r.headers["Location"] == "/login?next=/admin/departments"


async def test_post_without_csrf_token_is_refused(site):
    r = await site.post("/admin/departments/new", department_form(), csrf=False)
    assert r.status == 403
    r = await site.client.post("/admin/kiosks/new", data={"location": "Foyer", "csrf_token": "forged"},
                               allow_redirects=False)
    assert r.status == 403
    assert await site.db.departments() == [] and await site.db.kiosks() == []


async def test_overview_shows_links_and_statistics(site):
    day = site.app["hub"].now().date()
    await site.db.record_visit("buergeramt", day, 65, 245)
    await site.db.record_visit("buergeramt", day, 125, 305)
    await site.db.record_visit("buergeramt", day, None, None)
    await site.db.record_visit("buergeramt", day - dt.timedelta(days=40), 1, 1)  # too old to show
    r = await site.client.get("/admin")
    text = await r.text()
    assert r.status == 200
    for link in ("/admin/departments", "/admin/staff", "/admin/kiosks"):
        assert f'href="{link}"' in text
    await site.db.record_call_failure("buergeramt", day)
    r = await site.client.get("/admin")
    text = await r.text()
    # Medians of the waits (65, 125 s) and calls (245, 305 s), estimated from counts per time band.
    assert "1:45" in text and "4:45" in text
    assert '<td class="num">1</td></tr>' in text  # one failed connection today
    assert day.isoformat() in text and (day - dt.timedelta(days=40)).isoformat() not in text


# -- departments ---------------------------------------------------------------------

async def test_admin_creates_department_and_it_appears_on_status(site):
    r = await site.post("/admin/departments/new", department_form())
    assert r.status == 303, await r.text()
    assert r.headers["Location"] == "/admin/departments?done=department-created"

    [dept] = await site.db.departments()
    assert dept.languages == ("de", "en", "tr")
    assert [(str(a), str(b)) for a, b in dept.hours.weekly[0]] == [("08:00:00", "12:00:00"), ("14:00:00", "18:00:00")]
    assert 5 not in dept.hours.weekly and len(dept.hours.closed_days) == 1

    status = await (await site.client.get("/api/status")).json()
    assert [d["slug"] for d in status["departments"]] == ["buergeramt"]
    assert status["departments"][0]["languages"] == ["de", "en", "tr"]

    listing = await (await site.client.get("/admin/departments?done=department-created")).text()
    assert "The department has been created." in listing and "Bürgeramt" in listing
    edit = await (await site.client.get("/admin/departments/buergeramt/edit")).text()
    assert "Mon: 08:00-12:00, 14:00-18:00" in edit and "Tue: 08:00-12:00" in edit and "2026-12-24" in edit
    assert 'name="slug"' not in edit  # immutable


async def test_bad_hours_give_400_with_message_and_keep_input(site):
    cases = [("Mo: 08:00-25:00", "is not a valid time"),
             ("Mo: 08:00-12:00, 11:00-14:00", "overlap"),
             ("Xy: 08:00-12:00", "is not a weekday"),
             ("Mo: 08:00 bis 12:00", "is not a time range"),
             ("Mo: 08:00-12:00\nMo-Fr: 13:00-15:00", "already given in line 1"),
             ("Mo: 12:00-08:00", "Monday")]
    for hours, message in cases:
        r = await site.post("/admin/departments/new", department_form(hours=hours))
        text = html.unescape(await r.text())
        assert r.status == 400, hours
        assert message in text, (hours, text)
        assert hours in text  # the admin's input is kept
    r = await site.post("/admin/departments/new", department_form(closed_days="2026-12-24\n24.12.2026"))
    assert r.status == 400 and "Line 2" in html.unescape(await r.text())
    r = await site.post("/admin/departments/new", department_form(languages="de, english", slug="Bad Slug"))
    text = html.unescape(await r.text())
    assert r.status == 400 and '"english" is not a language code' in text and "lowercase letters" in text
    assert await site.db.departments() == []


async def test_edit_keeps_slug_and_updates_hub_and_delete_needs_confirmation(site):
    assert (await site.post("/admin/departments/new", department_form())).status == 303
    r = await site.post("/admin/departments/buergeramt/edit",
                        department_form(slug="other", name="Bürgerbüro", hours="Mo-Fr: 07:30-12:00"))
    assert r.status == 303
    [dept] = await site.db.departments()
    assert dept.slug == "buergeramt" and dept.name == "Bürgerbüro" and sorted(dept.hours.weekly) == [0, 1, 2, 3, 4]
    assert site.app["hub"].departments["buergeramt"].name == "Bürgerbüro"

    dup = await site.post("/admin/departments/new", department_form())
    assert dup.status == 400 and "already exists" in await dup.text()

    confirm = await site.client.get("/admin/departments/buergeramt/delete")
    assert confirm.status == 200 and "Delete for good" in await confirm.text()
    assert len(await site.db.departments()) == 1  # a GET deletes nothing
    r = await site.post("/admin/departments/buergeramt/delete", {})
    assert r.status == 303 and r.headers["Location"] == "/admin/departments?done=department-deleted"
    assert await site.db.departments() == [] and site.app["hub"].departments == {}
    assert (await site.client.get("/admin/departments/buergeramt/edit")).status == 404


# -- staff ---------------------------------------------------------------------------

async def test_staff_short_password_fails_and_good_one_can_log_in(site):
    await site.post("/admin/departments/new", department_form())
    member = {"username": "m.schmidt", "display_name": "M. Schmidt", "password": "short", "role": "clerk"}
    r = await site.post("/admin/staff/new", [*member.items(), ("departments", "buergeramt")])
    text = await r.text()
    assert r.status == 400 and "at least 10 characters" in text and 'value="M. Schmidt"' in text
    assert [m.username for m in await site.db.all_staff()] == ["chefin", "clerk"]

    r = await site.post("/admin/staff/new", [*(member | {"password": "long enough pw"}).items(),
                                             ("departments", "buergeramt"), ("departments", "unknown")])
    assert r.status == 303 and r.headers["Location"] == "/admin/staff?done=staff-created"
    created = next(m for m in await site.db.all_staff() if m.username == "m.schmidt")
    assert created.departments == {"buergeramt"} and created.role == "clerk" and created.active

    taken = await site.post("/admin/staff/new", member | {"password": "long enough pw"})
    assert taken.status == 400 and "taken" in await taken.text()
    await site.login("m.schmidt", "long enough pw")


async def test_edit_staff_password_optional_and_deactivate(site):
    r = await site.post(f"/admin/staff/{site.clerk_id}/edit",
                        {"display_name": "Herr Clerk", "role": "clerk", "password": "", "active": "on"})
    assert r.status == 303
    await site.login("clerk", CLERK_PW)  # password unchanged
    await site.login("chefin", ADMIN_PW)
    r = await site.post(f"/admin/staff/{site.clerk_id}/edit",
                        {"display_name": "Herr Clerk", "role": "clerk", "password": "short"})
    assert r.status == 400
    r = await site.post(f"/admin/staff/{site.clerk_id}/edit", {"display_name": "Herr Clerk", "role": "clerk"})
    assert r.status == 303
    assert not (await site.db.staff(site.clerk_id)).active
    assert await site.db.staff_credentials("clerk") is None


async def test_admin_cannot_deactivate_or_demote_themselves(site):
    page = await (await site.client.get(f"/admin/staff/{site.admin_id}/edit")).text()
    assert "This is your own account" in page
    for data in ({"display_name": "Die Chefin", "role": "admin"},                       # active unticked
                 {"display_name": "Die Chefin", "role": "clerk", "active": "on"}):      # demoted
        r = await site.post(f"/admin/staff/{site.admin_id}/edit", data)
        assert r.status == 400
        assert "You cannot deactivate your own account" in html.unescape(await r.text())
    me = await site.db.staff(site.admin_id)
    assert me.active and me.role == "admin"
    # Other changes to the own account still work.
    r = await site.post(f"/admin/staff/{site.admin_id}/edit",
                        {"display_name": "Die Amtsleiterin", "role": "admin", "active": "on"})
    assert r.status == 303 and (await site.db.staff(site.admin_id)).display_name == "Die Amtsleiterin"


# -- kiosks --------------------------------------------------------------------------

async def test_kiosk_token_shown_once_authenticates_until_revoked(site):
    r = await site.post("/admin/kiosks/new", {"location": "Rathaus, Foyer"})
    text = await r.text()
    assert r.status == 200 and r.headers["Cache-Control"] == "no-store"
    assert "cannot be shown again" in text
    token = re.search(r'id="kiosk-token" value="([^"]+)"', text)[1]
    kiosk = await site.db.kiosk_by_token(token)
    assert kiosk is not None and kiosk.location == "Rathaus, Foyer"

    listing = await (await site.client.get("/admin/kiosks")).text()
    assert "Rathaus, Foyer" in listing and token not in listing and token.split(".", 1)[1] not in listing

    r = await site.post(f"/admin/kiosks/{kiosk.id}/revoke", {})
    assert r.status == 303 and r.headers["Location"] == "/admin/kiosks?done=kiosk-revoked"
    assert await site.db.kiosk_by_token(token) is None
    ws = await site.client.get("/ws/kiosk", headers={"Authorization": f"Bearer {token}"})
    assert ws.status == 401

    assert (await site.post("/admin/kiosks/999/revoke", {})).status == 404


async def test_a_revoked_token_stays_dead_and_a_new_one_brings_the_kiosk_back(site):
    r = await site.post("/admin/kiosks/new", {"location": "Rathaus, Foyer"})
    old = re.search(r'id="kiosk-token" value="([^"]+)"', await r.text())[1]
    kiosk = await site.db.kiosk_by_token(old)
    assert (await site.post(f"/admin/kiosks/{kiosk.id}/revoke", {})).status == 303
    # The way back that used to revive the old token is gone...
    assert (await site.post(f"/admin/kiosks/{kiosk.id}/enable", {})).status in (404, 405)
    assert await site.db.kiosk_by_token(old) is None
    listing = await (await site.client.get("/admin/kiosks")).text()
    assert f'action="/admin/kiosks/{kiosk.id}/token"' in listing and "Enable again" not in listing
    assert "its token never works again" in listing
    # ...instead the kiosk gets a new token, shown once; the old one stays refused.
    r = await site.post(f"/admin/kiosks/{kiosk.id}/token", {})
    text = await r.text()
    assert r.status == 200 and r.headers["Cache-Control"] == "no-store"
    assert "previous token no longer works" in text
    new = re.search(r'id="kiosk-token" value="([^"]+)"', text)[1]
    assert new != old and (await site.db.kiosk_by_token(new)).id == kiosk.id
    assert await site.db.kiosk_by_token(old) is None
    assert (await site.client.get("/ws/kiosk", headers={"Authorization": f"Bearer {old}"})).status == 401
    # A new token for a kiosk in service replaces its token too.
    r = await site.post(f"/admin/kiosks/{kiosk.id}/token", {})
    newer = re.search(r'id="kiosk-token" value="([^"]+)"', await r.text())[1]
    assert await site.db.kiosk_by_token(new) is None and await site.db.kiosk_by_token(newer) is not None
    assert (await site.post(f"/admin/kiosks/{kiosk.id}/token", {}, csrf=False)).status == 403
    assert (await site.post("/admin/kiosks/999/token", {})).status == 404


async def test_kiosk_needs_a_location(site):
    r = await site.post("/admin/kiosks/new", {"location": "  "})
    assert r.status == 400 and "Please fill in this field." in await r.text()
    assert await site.db.kiosks() == []


# -- parsing -------------------------------------------------------------------------

@pytest.mark.parametrize("locale", ["de", "en"])
def test_week_text_round_trips(locale):
    _ = gettext_for(locale)
    hours, errors = forms.parse_hours("Mo-Fr: 08:00-12:00\nMo, Do: 14:00-18:00\nSa: geschlossen", "", "Europe/Berlin", _)
    assert hours is None and errors == {"hours": _("Line %(line)s: %(day)s was already given in line %(other)s.",
                                                   line=2, day=_("Mon"), other=1)}
    hours, errors = forms.parse_hours("Mo-Mi, Fr: 08:00-12:00\nDonnerstag 08:00–12:00; 14:00 – 18:00\n\nSo:",
                                      "2026-12-24", "Europe/Berlin", _)
    assert errors == {}
    assert sorted(hours.weekly) == [0, 1, 2, 3, 4] and len(hours.weekly[3]) == 2
    again, errors = forms.parse_hours(forms.format_week(hours, _), forms.format_closed_days(hours), "Europe/Berlin", _)
    assert errors == {} and again == hours


def test_format_duration():
    assert forms.format_duration(None) == "–"
    assert forms.format_duration(65) == "1:05"
    assert forms.format_duration(59.6) == "1:00"
    assert forms.format_duration(3725) == "62:05"


async def test_a_department_sets_its_phone_number_and_cap_for_visits_from_home(site):
    assert (await site.post("/admin/departments/new", department_form())).status == 303
    r = await site.post("/admin/departments/buergeramt/edit",
                        department_form(phone="+49 30 1234-567", online_cap="3"))
    assert r.status == 303, await r.text()
    dept = site.app["hub"].departments["buergeramt"]
    assert (dept.phone, dept.online_cap) == ("+49 30 1234-567", 3)
    edit = await (await site.client.get("/admin/departments/buergeramt/edit")).text()
    assert 'value="+49 30 1234-567"' in edit and 'name="online_cap" value="3"' in edit
    for field, value, message in (("phone", "call me maybe", "digits, spaces and"),
                                  ("online_cap", "-1", "enter a whole number from 0 to 1000")):
        r = await site.post("/admin/departments/buergeramt/edit", department_form(**{field: value}))
        assert r.status == 400 and message in html.unescape(await r.text())
    r = await site.post("/admin/departments/buergeramt/edit", department_form(phone="", online_cap=""))
    assert r.status == 303
    dept = (await site.db.departments())[0]
    assert (dept.phone, dept.online_cap) == ("", None)  # no number, central's cap
