"""Login: throttling per address and per account, the admin's unlock, redirects after login.

Clients get their addresses through X-Forwarded-For from a trusted proxy (the test
client's 127.0.0.1), so one test can be several people in several places. The
throttle's clock is a settable one: waits pass without sleeping.
"""
from __future__ import annotations

import asyncio
import re
import urllib.parse
from dataclasses import dataclass

import aiohttp
import pytest
import pytest_asyncio
import sqlalchemy as sa
from aiohttp.test_utils import TestClient

from central import passwords
from central.__main__ import main
from central.app import create_app
from central.config import Config
from central.storage import schema as t
from central.web import throttle

CLERK_PW = "clerk password 1"
ADMIN_PW = "admin password 1"
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')
HOME, ELSEWHERE, ATTACKER = "198.51.100.7", "198.51.100.99", "203.0.113.66"


pytestmark = pytest.mark.usefixtures("cheap_password_hashing")


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Site:
    client: TestClient
    clock: Clock

    @property
    def app(self):
        return self.client.server.app

    async def login(self, username: str, password: str, address: str = HOME, next_: str | None = None):
        """One login from a fresh browser at ``address``; returns the response (not followed)."""
        self.client.session.cookie_jar.clear()
        self.client.session.cookie_jar.update_cookies({"ak_lang": "en"})
        page = await self.client.get("/login", headers={"X-Forwarded-For": address})
        data = {"username": username, "password": password, "csrf_token": CSRF_RE.search(await page.text())[1]}
        if next_ is not None:
            data["next"] = next_
        return await self.client.post("/login", data=data, allow_redirects=False,
                                      headers={"X-Forwarded-For": address})


def make_app(tmp_path, **settings):
    config = Config.from_dict({"database_url": f"sqlite:///{tmp_path}/c.db", "secure_cookies": False,
                               "trusted_proxies": ["127.0.0.1"], **settings})
    return create_app(config)


@pytest_asyncio.fixture
async def site(aiohttp_client, tmp_path) -> Site:
    client = await aiohttp_client(make_app(tmp_path))
    db = client.server.app["db"]
    await db.create_staff("clerk", "Herr Clerk", passwords.hash_password(CLERK_PW), "clerk", [])
    await db.create_staff("chefin", "Die Chefin", passwords.hash_password(ADMIN_PW), "admin", [])
    clock = Clock()
    client.server.app["login_throttle"].clock = clock
    return Site(client, clock)


# -- throttling ----------------------------------------------------------------------

async def test_the_rightful_user_logs_in_while_someone_elsewhere_guesses(site):
    for _ in range(12):
        r = await site.login("clerk", "a wrong guess", address=ATTACKER)
        assert r.status in (401, 429)
    assert r.status == 429 and int(r.headers["Retry-After"]) >= 1
    assert "Too many failed attempts. Try again in" in await r.text()
    # The clerk at their own desk is not locked out by the attacker.
    assert (await site.login("clerk", CLERK_PW, address=HOME)).status == 302


async def test_own_typos_cost_seconds_not_minutes(site):
    for _ in range(throttle.PAIR.free):
        assert (await site.login("clerk", "typo typo typo")).status == 401
    r = await site.login("clerk", CLERK_PW)  # even the right password waits its turn...
    assert r.status == 429 and 1 <= int(r.headers["Retry-After"]) <= 2
    site.clock.now += 2
    assert (await site.login("clerk", CLERK_PW)).status == 302  # ...of a second or two
    # A success forgets the typos made from here.
    assert (await site.login("clerk", "typo typo typo")).status == 401
    assert (await site.login("clerk", CLERK_PW)).status == 302


async def test_waits_grow_but_never_beyond_a_few_minutes(site):
    waits = []
    for _ in range(60):
        r = await site.login("clerk", "a wrong guess", address=ATTACKER)
        if r.status == 429:
            waits.append(int(r.headers["Retry-After"]))
            site.clock.now += waits[-1]
            if len(waits) == 14:
                break
    assert waits == sorted(waits) and waits[0] <= 2 and waits[-3:] == [throttle.MAX_WAIT_S] * 3


async def test_guessing_across_many_names_from_one_address_is_slowed(site):
    for i in range(throttle.ADDRESS.free):
        assert (await site.login(f"name{i}", "a wrong guess", address=ATTACKER)).status == 401
    assert (await site.login("someone-else", "a wrong guess", address=ATTACKER)).status == 429
    assert (await site.login("clerk", CLERK_PW, address=HOME)).status == 302


async def test_many_addresses_guessing_one_account_make_it_wait(site):
    for i in range(throttle.ACCOUNT.free):
        assert (await site.login("clerk", "a wrong guess", address=f"203.0.113.{i + 1}")).status == 401
    r = await site.login("clerk", CLERK_PW, address=HOME)
    assert r.status == 429 and int(r.headers["Retry-After"]) <= throttle.MAX_WAIT_S
    assert "an administrator can" in await r.text()


async def test_parallel_guesses_get_no_more_tries_than_a_sequence(site):
    async def guess() -> int:
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser:
            page = await browser.get(site.client.make_url("/login"), headers={"X-Forwarded-For": ATTACKER})
            csrf = CSRF_RE.search(await page.text())[1]
            r = await browser.post(site.client.make_url("/login"), data={
                "username": "clerk", "password": "a wrong guess", "csrf_token": csrf},
                headers={"X-Forwarded-For": ATTACKER}, allow_redirects=False)
            return r.status

    statuses = await asyncio.gather(*(guess() for _ in range(12)))
    assert sorted(statuses) == [401] * throttle.PAIR.free + [429] * (12 - throttle.PAIR.free)


async def test_every_central_process_sees_the_same_waits(site, aiohttp_client, tmp_path):
    other = await aiohttp_client(make_app(tmp_path))  # a second process on the same database
    other.server.app["login_throttle"].clock = site.clock
    for _ in range(throttle.PAIR.free):
        assert (await site.login("clerk", "a wrong guess", address=ATTACKER)).status == 401
    assert (await Site(other, site.clock).login("clerk", "a wrong guess", address=ATTACKER)).status == 429


async def test_counters_keep_no_name_or_address(site):
    for _ in range(throttle.PAIR.free):
        await site.login("clerk", "a wrong guess", address=ATTACKER)
        await site.login("a-password-typed-as-name", "x", address="2001:db8:1:2:3:4:5:6")
    async with site.app["db"].engine.connect() as c:
        rows = [str(v) for table in (t.login_attempts,) for row in (await c.execute(sa.select(table))).all()
                for v in row]
    assert rows and not [v for v in rows if "clerk" in v or "203.0.113" in v or "2001:db8" in v
                         or "password" in v]


# -- unlocking -----------------------------------------------------------------------

async def _lock_clerk(site) -> None:
    for i in range(throttle.ACCOUNT.free):
        await site.login("clerk", "a wrong guess", address=f"203.0.113.{i + 1}")
    assert (await site.login("clerk", CLERK_PW)).status == 429


async def test_an_admin_lifts_the_wait_from_the_staff_page(site):
    await _lock_clerk(site)
    assert (await site.login("chefin", ADMIN_PW, address=ELSEWHERE)).status == 302
    page = await (await site.client.get("/admin/staff")).text()
    clerk_id = next(m.id for m in await site.app["db"].all_staff() if m.username == "clerk")
    assert f'action="/admin/staff/{clerk_id}/unlock"' in page and 'data-testid="login-wait"' in page
    forged = await site.client.post(f"/admin/staff/{clerk_id}/unlock", data={"csrf_token": "forged"},
                                    allow_redirects=False)
    assert forged.status == 403
    r = await site.client.post(f"/admin/staff/{clerk_id}/unlock", data={"csrf_token": CSRF_RE.search(page)[1]},
                               allow_redirects=False)
    assert r.status == 303 and r.headers["Location"] == "/admin/staff?done=staff-unlocked"
    assert 'data-testid="login-wait"' not in await (await site.client.get("/admin/staff")).text()
    assert (await site.login("clerk", CLERK_PW)).status == 302


async def test_a_new_password_lifts_the_wait_too(site):
    await _lock_clerk(site)
    await site.login("chefin", ADMIN_PW, address=ELSEWHERE)
    page = await (await site.client.get("/admin/staff")).text()
    clerk_id = next(m.id for m in await site.app["db"].all_staff() if m.username == "clerk")
    r = await site.client.post(f"/admin/staff/{clerk_id}/edit", data={
        "display_name": "Herr Clerk", "role": "clerk", "active": "on", "password": "a brand new one",
        "csrf_token": CSRF_RE.search(page)[1]}, allow_redirects=False)
    assert r.status == 303
    assert (await site.login("clerk", "a brand new one")).status == 302


def test_unlock_on_the_command_line(tmp_path, capsys):
    config = tmp_path / "central.toml"
    config.write_text(f'database_url = "sqlite:///{tmp_path}/c.db"\n')

    async def prepare() -> None:
        from central.storage import Database
        from central.web.throttle import LoginThrottle

        db = await Database.open(f"sqlite:///{tmp_path}/c.db")
        await db.create_staff("clerk", "Herr Clerk", "hash", "clerk", [])
        limiter = LoginThrottle(db.logins)
        for _ in range(throttle.PAIR.free):
            await limiter.begin("clerk", ATTACKER)
        assert list(await limiter.waiting(["clerk"])) == ["clerk"]
        await db.close()

    asyncio.run(prepare())
    assert main(["--config", str(config), "unlock", "nobody"]) == 1
    assert "there is no staff member 'nobody'" in capsys.readouterr().err
    assert main(["--config", str(config), "unlock", "clerk"]) == 0
    assert "clerk can log in again now" in capsys.readouterr().out

    async def check() -> None:
        from central.storage import Database
        from central.web.throttle import LoginThrottle

        db = await Database.open(f"sqlite:///{tmp_path}/c.db")
        assert await LoginThrottle(db.logins).waiting(["clerk"]) == {}
        await db.close()

    asyncio.run(check())


# -- where a login sends the browser -------------------------------------------------

OFF_SITE = ["/%09/evil.example/", "/\t/evil.example/", "//evil.example/", "/\\evil.example/", "\\\\evil.example",
            "/\r\n/evil.example", " //evil.example", "https://evil.example/", "http:evil.example",
            "javascript:alert(1)", "\x00//evil.example", "/\\/evil.example", "evil.example", "/\x7f/evil"]


def stays_here(location: str) -> bool:
    """A browser given this Location stays on this site (it drops tabs and newlines, reads \\ as /)."""
    as_read = re.sub(r"[\t\r\n]", "", location).strip("".join(map(chr, range(0x21)))).replace("\\", "/")
    parts = urllib.parse.urlsplit(as_read)
    return not parts.scheme and not parts.netloc and as_read.startswith("/") and not as_read.startswith("//")


@pytest.mark.parametrize("target", OFF_SITE)
async def test_after_login_the_browser_stays_on_this_site(site, target):
    r = await site.login("clerk", CLERK_PW, next_=urllib.parse.unquote(target))
    assert r.status == 302 and r.headers["Location"] == "/console"
    r = await site.client.post("/language", data={"lang": "de", "next": urllib.parse.unquote(target)},
                               allow_redirects=False)
    assert r.status == 302 and stays_here(r.headers["Location"]), r.headers["Location"]


async def test_the_login_page_never_offers_an_off_site_target(site):
    for target in ("/\t/evil.example/", "//evil.example"):
        page = await (await site.client.get("/login", params={"next": target})).text()
        assert 'name="next" value="/console"' in page


@pytest.mark.parametrize(("target", "location"), [
    ("/admin/staff", "/admin/staff"), ("/admin/staff?done=x", "/admin/staff?done=x"),
    ("/console#top", "/console"), ("/a b", "/a%20b")])
async def test_paths_on_this_site_are_kept(site, target, location):
    r = await site.login("clerk", CLERK_PW, next_=target)
    assert r.headers["Location"] == location


async def test_a_page_behind_login_comes_back_with_its_query(site):
    r = await site.client.get("/admin/staff?done=staff-saved&x=1", allow_redirects=False)
    location = urllib.parse.urlsplit(r.headers["Location"])
    assert r.status == 302 and location.path == "/login"
    assert urllib.parse.parse_qs(location.query) == {"next": ["/admin/staff?done=staff-saved&x=1"]}
