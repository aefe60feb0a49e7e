"""An admin claims a waiting unit through central's admin pages; the token reaches the unit and works.

A real central, raw WebSocket clients for the units and kiosks, and the admin's forms over HTTP.
"""
from __future__ import annotations

import asyncio
import html
import importlib.util
import re
import urllib.parse
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio

from central.fleet.claims import MAX_WRONG, WINDOW_S
from tests.central.test_enrolment import FakeClock, closing, waiting, waiting_unit

ROOT = Path(__file__).resolve().parents[2]
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')
NO_UNIT = "No unit is showing this code right now. Check the code on the unit&#39;s screen; a code lasts 10 minutes."


class Admin:
    """An admin's browser: logged in, English pages."""

    def __init__(self, central, session: aiohttp.ClientSession):
        self.central = central
        self.session = session

    async def get(self, path: str) -> tuple[int, str, aiohttp.ClientResponse]:
        async with self.session.get(self.central.url + path, allow_redirects=False) as r:
            return r.status, await r.text(), r

    async def claim(self, code: str, location: str = "Bücherei Musterdorf", departments=("buergerbuero",),
                    **extra: str) -> tuple[int, str, aiohttp.ClientResponse]:
        _status, page, _r = await self.get("/admin/kiosks")
        form = [("csrf_token", CSRF_RE.search(page)[1]), ("code", code), ("location", location),
                *(("departments", d) for d in departments), *extra.items()]
        async with self.session.post(self.central.url + "/admin/kiosks/enrol", data=form,
                                     allow_redirects=False) as r:
            return r.status, await r.text(), r


async def log_in(central, username: str | None = None, password: str | None = None) -> Admin:
    session = await central.login(username or central.credentials["admin_user"],
                                  password or central.credentials["admin_password"])
    session.cookie_jar.update_cookies({"ak_lang": "en"})
    return Admin(central, session)


@pytest_asyncio.fixture
async def admin(central) -> Admin:
    return await log_in(central)


@pytest_asyncio.fixture
async def clocks(central) -> FakeClock:
    """One fake clock for the codes and for the claim throttle."""
    fake = FakeClock()
    central.app["enrolments"].clock = fake
    central.app["claims"].throttle.clock = fake
    return fake


def code_error(page: str) -> str | None:
    found = re.search(r'data-testid="code-error">([^<]*)<', page)
    return found[1] if found else None


async def kiosk_settings(central, kiosk_id: int):
    kiosk = next(k for k in await central.db.kiosks() if k.id == kiosk_id)
    return await central.db.kiosk_settings.effective(kiosk_id, kiosk.location, list(central.hub.departments))


# -- the claim ------------------------------------------------------------------------------

async def test_a_claimed_unit_gets_its_token_and_is_a_kiosk_with_that_location_and_departments(central, admin):
    unit, offer = await waiting_unit(central, "10000000feedbeef")
    kiosks_before = {k.id for k in await central.db.kiosks()}
    status, page, _ = await admin.claim(offer["code"], "Bücherei Musterdorf", ("standesamt", "buergerbuero"))
    assert status == 200, page
    assert "Enrolled: Bücherei Musterdorf" in html.unescape(page)
    done = await unit.recv()
    assert done["type"] == "enrol.done" and done["location"] == "Bücherei Musterdorf"
    assert (await closing(unit)).data == 1000
    (kiosk_id,) = {k.id for k in await central.db.kiosks()} - kiosks_before
    assert done["token"].startswith(f"{kiosk_id}.")
    assert done["token"] not in page  # nobody sees the token
    assert f'href="/admin/fleet/{kiosk_id}"' in page  # the kiosk's page on the fleet page
    # The unit is that kiosk now: its serial and model are kept, its settings are the admin's choice.
    unit_row = await central.db.kiosk_units.by_serial("10000000feedbeef")
    assert (unit_row.kiosk_id, unit_row.model) == (kiosk_id, "Raspberry Pi 4 Model B Rev 1.5")
    settings = await kiosk_settings(central, kiosk_id)
    assert settings.location == "Bücherei Musterdorf"
    assert settings.departments == ["buergerbuero", "standesamt"]  # central's order
    # The token works on /ws/kiosk, and the kiosk gets its settings.
    kiosk = await central.kiosk(done["token"])
    assert kiosk.settings["location"] == "Bücherei Musterdorf"
    assert kiosk.settings["departments"] == ["buergerbuero", "standesamt"]
    # Written to the audit log, without the token.
    (entry,) = [e for e in await central.db.audit.recent() if e.action == "kiosk.enrol"]
    assert (entry.staff_name, entry.target) == ("admin", f"kiosk:{kiosk_id}")
    assert done["token"].split(".")[1] not in entry.detail and "10000000feedbeef" in entry.detail
    # The kiosk list shows the unit.
    _, listing, _ = await admin.get("/admin/kiosks")
    assert "Unit 10000000feedbeef" in listing


async def test_all_departments_ticked_means_every_department_also_later_ones(central, admin):
    unit, offer = await waiting_unit(central)
    all_slugs = list(central.hub.departments)
    status, page, _ = await admin.claim(offer["code"], departments=all_slugs)
    assert status == 200, page
    kiosk_id = int((await unit.recv("enrol.done"))["token"].split(".")[0])
    assert (await central.db.kiosk_settings.overrides(kiosk_id)).get("departments") is None
    assert (await kiosk_settings(central, kiosk_id)).departments == all_slugs


@pytest.mark.parametrize("typed", ["{code}", "{lower}", "{lower_spaced}", "{no_dash}", " {code} "])
async def test_the_code_may_be_typed_in_lower_case_with_spaces_or_without_its_dash(central, admin, typed):
    unit, offer = await waiting_unit(central)
    code = offer["code"]
    variants = {"code": code, "lower": code.lower(), "lower_spaced": " ".join(code.lower().replace("-", "")),
                "no_dash": code.replace("-", "")}
    status, page, _ = await admin.claim(typed.format(**variants))
    assert status == 200, code_error(page)
    assert (await unit.recv())["type"] == "enrol.done"


async def test_the_qr_link_asks_for_the_login_and_comes_back_to_the_filled_in_form(central):
    unit, offer = await waiting_unit(central, "qr-unit-0001")
    path = urllib.parse.urlsplit(offer["claim_url"])
    path_qs = f"{path.path}?{path.query}"
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser:
        async with browser.get(central.url + path_qs, allow_redirects=False) as r:
            assert r.status == 302
            login = r.headers["Location"]
        assert urllib.parse.parse_qs(urllib.parse.urlsplit(login).query)["next"] == [path_qs]
        async with browser.get(central.url + login) as r:
            csrf = CSRF_RE.search(await r.text())[1]
        browser.cookie_jar.update_cookies({"ak_lang": "en"})
        async with browser.post(central.url + "/login", data={
                "username": central.credentials["admin_user"], "password": central.credentials["admin_password"],
                "csrf_token": csrf, "next": path_qs}) as r:
            assert r.status == 200 and str(r.url) == central.url + path_qs
            page = await r.text()
    assert f'name="code" value="{offer["code"]}"' in page
    assert "Unit waiting: serial number qr-unit-0001 (Raspberry Pi 4 Model B Rev 1.5)" in page
    assert page.count('type="checkbox" name="departments"') == len(central.hub.departments)
    assert code_error(page) is None
    assert await unit.quiet() == []  # looking does not claim


async def test_the_enrol_pages_are_for_admins_only(central):
    unit, offer = await waiting_unit(central)
    clerk = await log_in(central, "sachbearbeiterin", central.credentials["clerk_password"])
    status, _, _ = await clerk.get(f"/admin/kiosks/enrol?code={offer['code']}")
    assert status == 403
    async with clerk.session.post(central.url + "/admin/kiosks/enrol", data={"code": offer["code"]}) as r:
        assert r.status == 403
    assert central.app["enrolments"].find(offer["code"]) is not None
    assert await unit.quiet() == []


# -- wrong, expired, reused --------------------------------------------------------------------

async def test_a_wrong_code_gets_a_clear_message_and_changes_nothing(central, admin):
    unit, offer = await waiting_unit(central)
    kiosks = await central.db.kiosks()
    wrong = "ABCD-EFGH" if offer["code"] != "ABCD-EFGH" else "HGFE-DCBA"
    for typed in (wrong, "not a code", ""):
        status, page, _ = await admin.claim(typed)
        assert status == 400
        assert code_error(page) == NO_UNIT
        assert 'name="location" value="Bücherei Musterdorf"' in html.unescape(page)  # the input is kept
    assert await central.db.kiosks() == kiosks
    assert await unit.quiet() == []
    status, page, _ = await admin.get(f"/admin/kiosks/enrol?code={wrong}")
    assert status == 400 and code_error(page) == NO_UNIT


async def test_an_expired_code_no_longer_works_and_the_unit_shows_a_fresh_one(central, admin, clocks):
    unit, offer = await waiting_unit(central)
    clocks.now += 600
    status, page, _ = await admin.claim(offer["code"])
    assert status == 400 and code_error(page) == NO_UNIT
    fresh = await unit.recv("enrol.code")
    status, page, _ = await admin.claim(offer["code"])
    assert status == 400 and code_error(page) == NO_UNIT
    status, page, _ = await admin.claim(fresh["code"])
    assert status == 200, code_error(page)
    assert (await unit.recv("enrol.done"))["location"] == "Bücherei Musterdorf"


async def test_a_claimed_code_never_works_again(central, admin):
    unit, offer = await waiting_unit(central)
    assert (await admin.claim(offer["code"]))[0] == 200
    assert (await unit.recv())["type"] == "enrol.done"
    kiosks = await central.db.kiosks()
    for _ in range(2):
        status, page, _ = await admin.claim(offer["code"])
        assert status == 400 and code_error(page) == NO_UNIT
    assert await central.db.kiosks() == kiosks


async def test_two_admins_claiming_one_code_at_once_make_one_kiosk(central, admin):
    other = await log_in(central)
    unit, offer = await waiting_unit(central)
    kiosks = len(await central.db.kiosks())
    results = await asyncio.gather(admin.claim(offer["code"], "Erste"), other.claim(offer["code"], "Zweite"))
    assert sorted(status for status, _, _ in results) == [200, 400]
    assert len(await central.db.kiosks()) == kiosks + 1
    assert (await unit.recv())["type"] == "enrol.done"


async def test_a_unit_that_left_cannot_be_claimed(central, admin):
    unit, offer = await waiting_unit(central)
    await unit.ws.close()
    await waiting(central, 0)
    status, page, _ = await admin.claim(offer["code"])
    assert status == 400 and code_error(page) == NO_UNIT


async def test_a_new_kiosk_needs_a_location_and_a_department_and_the_code_stays_valid(central, admin):
    unit, offer = await waiting_unit(central)
    status, page, _ = await admin.claim(offer["code"], location="", departments=())
    assert status == 400
    assert "Please fill in this field." in page and "Pick at least one department for this kiosk." in page
    assert code_error(page) is None
    assert central.app["enrolments"].find(offer["code"]) is not None
    assert await unit.quiet() == []


# -- guessing ------------------------------------------------------------------------------------

async def test_guessing_codes_is_stopped_then_even_the_right_code_waits(central, admin, clocks):
    unit, offer = await waiting_unit(central)
    wrong = [c for c in ("ABCD-EFGH", "HGFE-DCBA", "2345-6789", "9876-5432", "ZZZZ-ZZZZ", "YYYY-YYYY", "XXXX-XXXX",
                         "WWWW-WWWW", "VVVV-VVVV", "UUUU-UUUU", "TTTT-TTTT") if c != offer["code"]][:MAX_WRONG]
    for code in wrong:
        clocks.now += 1
        status, page, _ = await admin.claim(code)
        assert status == 400 and code_error(page) == NO_UNIT
    status, page, response = await admin.claim(offer["code"])
    assert status == 429
    wait = int(response.headers["Retry-After"])
    assert WINDOW_S - MAX_WRONG <= wait <= WINDOW_S
    assert "Too many wrong codes." in code_error(page) and "15 minutes" in code_error(page)
    assert await unit.quiet() == [] and central.app["enrolments"].find(offer["code"]) is not None
    # Another admin from the same address waits too (the address counts), and so does the QR link.
    other = await log_in(central)
    assert (await other.claim(offer["code"]))[0] == 429
    assert (await admin.get(f"/admin/kiosks/enrol?code={offer['code']}"))[0] == 429
    # Once the oldest wrong code is 15 minutes old, one more try is let through.
    clocks.now += wait - 1
    assert (await admin.claim(offer["code"]))[0] == 429
    clocks.now += 1
    fresh = await unit.recv("enrol.code")  # the first code ran out meanwhile
    status, page, _ = await admin.claim(fresh["code"])
    assert status == 200, code_error(page)
    assert (await unit.recv("enrol.done"))["type"] == "enrol.done"


async def test_a_right_code_does_not_count_against_the_admin(central, admin):
    for i in range(MAX_WRONG + 2):
        unit, offer = await waiting_unit(central, f"serial-{i:04d}")
        status, page, _ = await admin.claim(offer["code"], f"Ort {i}")
        assert status == 200, code_error(page)
        await unit.recv("enrol.done")


# -- enrolled again --------------------------------------------------------------------------------

async def test_a_known_unit_is_enrolled_again_as_its_kiosk_after_the_admin_confirms(central, admin):
    unit, offer = await waiting_unit(central, "10000000cafe0001")
    assert (await admin.claim(offer["code"], "Rathaus Foyer", ("standesamt",)))[0] == 200
    first = await unit.recv("enrol.done")
    kiosk_id = int(first["token"].split(".")[0])
    old_kiosk = await central.kiosk(first["token"])
    # The unit lost its token (new SD card) and shows a code again.
    unit, offer = await waiting_unit(central, "10000000cafe0001")
    kiosks = await central.db.kiosks()
    status, page, _ = await admin.claim(offer["code"], "Ganz woanders", ("buergerbuero",))
    assert status == 200
    text = html.unescape(page)
    assert 'This unit is already the kiosk "Rathaus Foyer".' in text
    assert f'name="confirm_kiosk" value="{kiosk_id}"' in page
    assert await unit.quiet() == [] and await old_kiosk.quiet() == []  # nothing happens before the confirmation
    # The QR link says so, too.
    status, page, _ = await admin.get(f"/admin/kiosks/enrol?code={offer['code']}")
    assert status == 200 and 'This unit is already the kiosk "Rathaus Foyer".' in html.unescape(page)
    # Confirmed: a new token for the same kiosk, its location and departments kept.
    status, page, _ = await admin.claim(offer["code"], "Ganz woanders", ("buergerbuero",),
                                        confirm_kiosk=str(kiosk_id))
    assert status == 200 and "Enrolled: Rathaus Foyer" in page
    again = await unit.recv("enrol.done")
    assert again["token"] != first["token"] and again["token"].startswith(f"{kiosk_id}.")
    assert again["location"] == "Rathaus Foyer"
    assert await central.db.kiosks() == kiosks
    settings = await kiosk_settings(central, kiosk_id)
    assert (settings.location, settings.departments) == ("Rathaus Foyer", ["standesamt"])
    # The old token is refused and its connection ended; the new one works.
    assert (await closing(old_kiosk)).type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await central.kiosk(first["token"])
    assert refused.value.status == 401
    await central.kiosk(again["token"])
    assert [e.action for e in await central.db.audit.recent()][:2] == ["kiosk.reenrol", "kiosk.enrol"]


async def test_confirming_another_kiosk_is_not_a_confirmation(central, admin):
    unit, offer = await waiting_unit(central, "10000000cafe0002")
    assert (await admin.claim(offer["code"], "Rathaus Foyer"))[0] == 200
    kiosk_id = int((await unit.recv("enrol.done"))["token"].split(".")[0])
    unit, offer = await waiting_unit(central, "10000000cafe0002")
    status, page, _ = await admin.claim(offer["code"], confirm_kiosk=str(kiosk_id + 1))
    assert status == 200 and f'name="confirm_kiosk" value="{kiosk_id}"' in page
    assert await unit.quiet() == []


async def test_the_boot_tests_admin_script_claims_through_these_pages(central):
    """image/build/claim-code.py (the QEMU boot test's admin) reads and submits these forms as they are."""
    spec = importlib.util.spec_from_file_location("claim_code", ROOT / "image" / "build" / "claim-code.py")
    claim_code = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(claim_code)
    unit, offer = await waiting_unit(central, "boot-test-unit")

    def claim() -> str:
        script_admin = claim_code.Admin(central.url)
        script_admin.log_in(central.credentials["admin_user"], central.credentials["admin_password"])
        return script_admin.claim(offer["code"], "Bootprüfstand", ["standesamt"])

    said = await asyncio.to_thread(claim)
    assert "Bootprüfstand" in said
    done = await unit.recv("enrol.done")
    settings = await kiosk_settings(central, int(done["token"].split(".")[0]))
    assert (settings.location, settings.departments) == ("Bootprüfstand", ["standesamt"])


async def test_a_revoked_kiosk_is_brought_back_by_enrolling_its_unit_again(central, admin):
    unit, offer = await waiting_unit(central, "10000000cafe0003")
    assert (await admin.claim(offer["code"], "Gestohlen und wiedergefunden"))[0] == 200
    kiosk_id = int((await unit.recv("enrol.done"))["token"].split(".")[0])
    await central.db.revoke_kiosk(kiosk_id)
    unit, offer = await waiting_unit(central, "10000000cafe0003")
    status, page, _ = await admin.claim(offer["code"])
    assert status == 200 and "This kiosk is revoked now: enrolling it again brings it back." in page
    assert (await admin.claim(offer["code"], confirm_kiosk=str(kiosk_id)))[0] == 200
    token = (await unit.recv("enrol.done"))["token"]
    assert not next(k for k in await central.db.kiosks() if k.id == kiosk_id).revoked
    await central.kiosk(token)
