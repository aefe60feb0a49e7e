"""The whole Database contract, once on SQLite and once on a real PostgreSQL server.

The PostgreSQL case gets a fresh database (CREATE DATABASE) in the session's throwaway
server (tests/servers.py). If that server cannot be started the test fails: a skip would
hide that half the storage layer went untested.
"""
from __future__ import annotations

import asyncio
import contextlib
import datetime as dt

import pytest
import sqlalchemy as sa
import sqlalchemy.ext.asyncio

from central.hours import OfficeHours
from central.storage import schema as t
from central.storage.database import DailyStats, Database, Kiosk, TokenReuse, token_hash

HOURS_A = OfficeHours.from_dict({
    "weekly": {"mon": [["14:00", "16:00"], ["08:00", "12:00"]], "thu": [["08:00", "18:00"]]},
    "closed_days": ["2026-12-31", "2026-12-24"],
    "timezone": "Europe/Berlin",
})
HOURS_B = OfficeHours.from_dict({"weekly": {"sat": [["09:30", "12:00"]]}, "timezone": "America/New_York"})
HOURS_CLOSED = OfficeHours.from_dict({})


@contextlib.asynccontextmanager
async def database_url(backend: str, tmp_path, request: pytest.FixtureRequest):
    """URL of a fresh, empty database on `backend`."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path}/central.db"
        return
    from tests.servers import ServerUnavailable

    try:
        server, reason = request.getfixturevalue("postgresql_server"), ""
    except ServerUnavailable as exc:
        server, reason = None, str(exc)
    if server is None:  # fail, never skip: half the storage layer would go untested
        pytest.fail(f"no PostgreSQL server for the test: {reason}", pytrace=False)
    url = await server.create_database()
    try:
        yield url
    finally:
        await server.drop_database(url.rsplit("/", 1)[1])


async def count(db: Database, table: sa.Table, *where) -> int:
    async with db.engine.connect() as c:
        return (await c.execute(sa.select(sa.func.count()).select_from(table).where(*where))).scalar_one()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_database_contract(backend, tmp_path, request):
    async with database_url(backend, tmp_path, request) as url:
        # Several central processes starting at once on a fresh database all get it.
        db, *others = await asyncio.gather(*(Database.open(url) for _ in range(4)))
        try:
            await shared_across_processes_contract(db, others)
        finally:
            for other in others:
                await other.close()
        try:
            assert db.engine.dialect.name == backend
            await departments_contract(db)
            staff_ids = await staff_contract(db)
            await sessions_contract(db, *staff_ids)
            await deactivation_contract(db, *staff_ids)
            await department_delete_contract(db, *staff_ids)
            await kiosks_contract(db)
            await counters_contract(db)
            await token_reuse_contract(db)
        finally:
            await db.close()
        # Everything was committed: a new process sees it.
        db = await Database.open(url)
        try:
            assert [d.slug for d in await db.departments()] == ["ordnungsamt", "standesamt", "buergerbuero"]
            assert [s.username for s in await db.all_staff()] == ["admin", "demir", "geist"]
            assert len(await db.kiosks()) == 4 and len(await db.recent_durations("standesamt")) == 4
        finally:
            await db.close()


async def departments_contract(db: Database) -> None:
    assert await db.departments() == []
    await db.save_department("standesamt", "Standesamt", ["de", "en"], HOURS_A, sort_order=1)
    await db.save_department("buergerbuero", "Bürgerbüro", ["tr", "de", "en"], HOURS_B, sort_order=1)
    await db.save_department("ordnungsamt", "Ordnungsamt", ["de"], HOURS_CLOSED)  # sort_order defaults to 0

    listed = await db.departments()
    # sort_order first, then name; OfficeHours and languages (in their order) survive the JSON round trip.
    assert [(d.slug, d.name, d.languages, d.hours, d.sort_order) for d in listed] == [
        ("ordnungsamt", "Ordnungsamt", ("de",), HOURS_CLOSED, 0),
        ("buergerbuero", "Bürgerbüro", ("tr", "de", "en"), HOURS_B, 1),
        ("standesamt", "Standesamt", ("de", "en"), HOURS_A, 1),
    ]
    assert listed[2].hours.to_dict() == HOURS_A.to_dict()
    assert listed[2].hours.closed_days == {dt.date(2026, 12, 24), dt.date(2026, 12, 31)}
    assert listed[1].hours.timezone == "America/New_York"
    assert all(isinstance(d.id, int) for d in listed) and len({d.id for d in listed}) == 3
    ids = {d.slug: d.id for d in listed}

    # Saving an existing slug updates in place: same id, no second row, new order.
    await db.save_department("standesamt", "Standesamt Mitte", ["de"], HOURS_B, sort_order=0)
    listed = await db.departments()
    assert [(d.slug, d.id) for d in listed] == [("ordnungsamt", ids["ordnungsamt"]),
                                                ("standesamt", ids["standesamt"]),
                                                ("buergerbuero", ids["buergerbuero"])]
    assert (listed[1].name, listed[1].languages, listed[1].hours) == ("Standesamt Mitte", ("de",), HOURS_B)
    assert await count(db, t.departments) == 3

    # Delete: gone from the list; deleting an unknown slug is a no-op.
    await db.save_department("probe", "Probe", ["de"], HOURS_A, sort_order=9)
    await db.delete_department("probe")
    await db.delete_department("no-such-department")
    assert [d.slug for d in await db.departments()] == ["ordnungsamt", "standesamt", "buergerbuero"]


async def staff_contract(db: Database) -> tuple[int, int]:
    clerk_id = await db.create_staff("demir", "Frau Demir", "hash-demir", "clerk", ["buergerbuero", "standesamt"])
    admin_id = await db.create_staff("admin", "IT-Administration", "hash-admin", "admin", [])
    assert isinstance(clerk_id, int) and isinstance(admin_id, int) and clerk_id != admin_id

    everyone = await db.all_staff()
    assert [(s.id, s.username, s.display_name, s.role, s.active, s.departments) for s in everyone] == [
        (admin_id, "admin", "IT-Administration", "admin", True, frozenset()),
        (clerk_id, "demir", "Frau Demir", "clerk", True, frozenset({"buergerbuero", "standesamt"})),
    ]
    assert everyone[0].is_admin and not everyone[1].is_admin
    assert await db.staff(clerk_id) == everyone[1]
    assert await db.staff(max(clerk_id, admin_id) + 100) is None

    assert await db.staff_credentials("demir") == (clerk_id, "hash-demir")
    assert await db.staff_credentials("admin") == (admin_id, "hash-admin")
    assert await db.staff_credentials("nobody") is None

    # Update without a password keeps the hash; departments are replaced, not added to.
    await db.update_staff(clerk_id, display_name="Frau A. Demir", role="admin", active=True,
                          departments=["ordnungsamt"])
    member = await db.staff(clerk_id)
    assert (member.username, member.display_name, member.role, member.active, member.departments) == (
        "demir", "Frau A. Demir", "admin", True, frozenset({"ordnungsamt"}))
    assert await db.staff_credentials("demir") == (clerk_id, "hash-demir")
    await db.update_staff(clerk_id, display_name="Frau Demir", role="clerk", active=True,
                          departments=["ordnungsamt", "standesamt"], password_hash="hash-demir-2")
    assert await db.staff_credentials("demir") == (clerk_id, "hash-demir-2")
    assert (await db.staff(clerk_id)).departments == {"ordnungsamt", "standesamt"}
    await db.set_password_hash(clerk_id, "hash-demir-3")
    assert await db.staff_credentials("demir") == (clerk_id, "hash-demir-3")

    # Slugs that name no department (deleted meanwhile) are ignored, also when none is left.
    await db.update_staff(admin_id, display_name="IT-Administration", role="admin", active=True,
                          departments=["no-such-department"])
    assert (await db.staff(admin_id)).departments == frozenset()
    ghost_id = await db.create_staff("geist", "Geist", "hash-geist", "clerk", ["gone", "standesamt"])
    assert (await db.staff(ghost_id)).departments == {"standesamt"}

    # The same username twice is refused by the database.
    with pytest.raises(sa.exc.IntegrityError):
        await db.create_staff("demir", "Doppelt", "hash", "clerk", [])
    assert [s.username for s in await db.all_staff()] == ["admin", "demir", "geist"]
    return clerk_id, admin_id


async def sessions_contract(db: Database, clerk_id: int, admin_id: int) -> None:
    token, csrf = await db.create_session(clerk_id, 3600)
    other_token, other_csrf = await db.create_session(clerk_id, 3600)
    assert len({token, csrf, other_token, other_csrf}) == 4 and len(token) >= 40
    member, got_csrf = await db.session(token)
    assert (member, got_csrf) == (await db.staff(clerk_id), csrf)
    assert (await db.session(other_token))[1] == other_csrf
    assert await db.session("not-a-token") is None
    assert await db.session("") is None
    # Only the hash is stored.
    assert await count(db, t.sessions, t.sessions.c.token_hash == token_hash(token)) == 1
    assert await count(db, t.sessions, t.sessions.c.token_hash == token) == 0

    await db.delete_session(token)
    assert await db.session(token) is None
    assert (await db.session(other_token))[0].id == clerk_id  # the other session lives on
    await db.delete_session(token)  # twice is harmless

    # Expiry: a session with a tiny lifetime is refused once that has passed...
    short, _ = await db.create_session(admin_id, 0.05)
    assert (await db.session(short))[0].id == admin_id
    await asyncio.sleep(0.2)
    assert await db.session(short) is None
    # ...and creating a session sweeps expired ones away.
    assert await count(db, t.sessions, t.sessions.c.token_hash == token_hash(short)) == 1
    admin_token, _ = await db.create_session(admin_id, 3600)
    assert await count(db, t.sessions, t.sessions.c.token_hash == token_hash(short)) == 0
    assert (await db.session(admin_token))[0].is_admin
    await db.delete_session(admin_token)


async def deactivation_contract(db: Database, clerk_id: int, admin_id: int) -> None:
    first, _ = await db.create_session(clerk_id, 3600)
    second, _ = await db.create_session(clerk_id, 3600)
    admin_token, _ = await db.create_session(admin_id, 3600)
    assert await count(db, t.sessions, t.sessions.c.staff_id == clerk_id) >= 2

    await db.update_staff(clerk_id, display_name="Frau Demir", role="clerk", active=False,
                          departments=["standesamt"])
    assert await count(db, t.sessions, t.sessions.c.staff_id == clerk_id) == 0
    assert await db.session(first) is None and await db.session(second) is None
    assert (await db.session(admin_token))[0].id == admin_id  # other staff stay logged in
    assert await db.staff_credentials("demir") is None  # inactive staff cannot log in
    member = await db.staff(clerk_id)
    assert (member.active, member.departments) == (False, frozenset({"standesamt"}))
    assert clerk_id in {s.id for s in await db.all_staff()}  # still listed for the admin

    # Reactivated: can log in again, but the old sessions stay gone.
    await db.update_staff(clerk_id, display_name="Frau Demir", role="clerk", active=True,
                          departments=["standesamt", "buergerbuero"])
    assert await db.staff_credentials("demir") == (clerk_id, "hash-demir-3")
    assert await db.session(first) is None


async def department_delete_contract(db: Database, clerk_id: int, admin_id: int) -> None:
    await db.delete_department("buergerbuero")
    assert [d.slug for d in await db.departments()] == ["ordnungsamt", "standesamt"]
    # Memberships go with the department.
    assert (await db.staff(clerk_id)).departments == {"standesamt"}
    assert await count(db, t.staff_departments) == 2  # demir and geist in standesamt
    await db.save_department("buergerbuero", "Bürgerbüro", ["de"], HOURS_B, sort_order=1)
    assert (await db.staff(clerk_id)).departments == {"standesamt"}  # a new department, no old links


async def kiosks_contract(db: Database) -> None:
    foyer_id, foyer = await db.create_kiosk("Rathaus, Foyer")
    annex_id, annex = await db.create_kiosk("Bibliothek")
    assert foyer_id != annex_id
    prefix, _, secret = foyer.partition(".")
    assert prefix == str(foyer_id) and len(secret) >= 40
    assert await db.kiosk_by_token(foyer) == Kiosk(foyer_id, "Rathaus, Foyer", False)
    assert await db.kiosk_by_token(annex) == Kiosk(annex_id, "Bibliothek", False)
    assert await db.kiosks() == [Kiosk(annex_id, "Bibliothek", False), Kiosk(foyer_id, "Rathaus, Foyer", False)]
    # Stored hashed.
    assert await count(db, t.kiosks, t.kiosks.c.token_hash == token_hash(secret)) == 1
    assert await count(db, t.kiosks, t.kiosks.c.token_hash == secret) == 0

    # Wrong token, token of another kiosk under this id, unknown id, malformed: all refused.
    for bad in (f"{foyer_id}.wrong", f"{foyer_id}.{secret}x", f"{annex_id}.{secret}", f"{foyer_id + 1000}.{secret}",
                f".{secret}", secret, f"{foyer_id}", f"{foyer_id}.", "", "."):
        assert await db.kiosk_by_token(bad) is None, bad

    await db.revoke_kiosk(foyer_id)
    assert await db.kiosk_by_token(foyer) is None
    assert await db.kiosk_by_token(annex) is not None
    assert Kiosk(foyer_id, "Rathaus, Foyer", True) in await db.kiosks()
    # A revoked token is dead for good; a new token brings the kiosk back.
    renewed = await db.new_kiosk_token(foyer_id)
    assert renewed.split(".", 1)[0] == str(foyer_id) and renewed != foyer
    assert await db.kiosk_by_token(foyer) is None
    assert await db.kiosk_by_token(renewed) == Kiosk(foyer_id, "Rathaus, Foyer", False)
    # ...and replaces a token in service, too.
    annex_renewed = await db.new_kiosk_token(annex_id)
    assert await db.kiosk_by_token(annex) is None and await db.kiosk_by_token(annex_renewed) is not None


async def shared_across_processes_contract(db: Database, others: list[Database]) -> None:
    """What several central processes share: one resume-token key, created by whoever comes first."""
    everyone = [db, *others]
    keys = await asyncio.gather(*(d.secret("resume_token_key") for d in everyone))
    assert len(set(keys)) == 1 and len(keys[0]) >= 43  # 256 random bits, created once
    assert await db.secret("resume_token_key") == keys[0]
    assert await db.secret("another") != keys[0]


async def counters_contract(db: Database) -> None:
    today = dt.date.today()
    yesterday, long_ago = today - dt.timedelta(days=1), today - dt.timedelta(days=40)
    assert await db.recent_durations("standesamt") == []
    assert await db.daily_stats(long_ago) == []

    await db.record_visit("standesamt", long_ago, 999, 999)
    # yesterday, standesamt: waits 60, 120, 30; durations 300, 500
    await db.record_visit("standesamt", yesterday, 60.4, 299.6)
    await db.record_visit("standesamt", yesterday, 120, None)    # left before the call
    await db.record_visit("standesamt", yesterday, 30, 500)
    # today, standesamt: no wait known, one duration
    await db.record_visit("standesamt", today, None, 240)
    # today, buergerbuero: only visitors who left before pick-up, and two calls that never connected
    await db.record_visit("buergerbuero", today, None, None)
    await db.record_visit("buergerbuero", today, None, None)
    await db.record_call_failure("buergerbuero", today)
    await db.record_call_failure("buergerbuero", today)
    # today, ordnungsamt: waits 10, 20, 30, 40 (median 25); durations 100, 200, 300, 400 (median 250)
    for wait, duration in ((40, 100), (10, 400), (30, 200), (20, 300)):
        await db.record_visit("ordnungsamt", today, wait, duration)

    # Medians come from counts per bucket: exact to within half a bucket (10 s under a minute, 30 s to 10 min).
    stats = await db.daily_stats(since=yesterday)
    assert all(isinstance(s.day, dt.date) for s in stats)
    # Newest day first; within a day, slug descending.
    assert stats == [
        DailyStats(today, "standesamt", 1, 1, None, 255),
        DailyStats(today, "ordnungsamt", 4, 4, 30, 255),
        DailyStats(today, "buergerbuero", 2, 0, None, None, call_failures=2),
        DailyStats(yesterday, "standesamt", 3, 2, 75, 390),
    ]
    # `since` is inclusive and nothing older comes back.
    assert [(s.day, s.department) for s in await db.daily_stats(since=today)] == [
        (today, "standesamt"), (today, "ordnungsamt"), (today, "buergerbuero")]
    assert len(await db.daily_stats(since=long_ago)) == 5
    assert await db.daily_stats(since=today + dt.timedelta(days=1)) == []

    # The wait estimate's seed: durations spread like the newest days' calls, as far back as it takes.
    assert await db.recent_durations("standesamt") == [255, 285, 495, 990]
    assert await db.recent_durations("standesamt", limit=2) == [255, 495]  # today and yesterday: 3 calls
    assert await db.recent_durations("standesamt", limit=1) == [255]  # today's call is enough for one
    assert await db.recent_durations("ordnungsamt") == [105, 195, 315, 405]
    assert await db.recent_durations("buergerbuero") == []
    assert await db.recent_durations("no-such-department") == []

    # Nothing identifies a visit: no row per visit, no time of day, no kiosk.
    assert await count(db, t.daily_visits) == 5
    assert set(t.daily_visits.c.keys()) == {"department", "day", "visits", "calls", "call_failures", "wait_sum_s",
                                            "duration_sum_s"}
    assert set(t.daily_histogram.c.keys()) == {"department", "day", "measure", "bucket_s", "count"}

    # Several central processes count into the same day at once: nothing is lost.
    others = [await Database.open(db.engine.url.render_as_string(hide_password=False)) for _ in range(3)]
    try:
        await asyncio.gather(*(d.record_visit("probe", today, 5, 50) for d in [db, *others] for _ in range(10)),
                             *(d.record_call_failure("probe", today) for d in others))
    finally:
        for other in others:
            await other.close()
    (probe,) = [s for s in await db.daily_stats(today) if s.department == "probe"]
    assert (probe.visits, probe.calls, probe.call_failures, probe.median_wait_s, probe.median_duration_s) == (
        40, 40, 3, 5, 55)


async def token_reuse_contract(db: Database) -> None:
    kiosk_id, _ = await db.create_kiosk("Geklont")
    other_id, _ = await db.create_kiosk("Einzeln")
    assert await db.token_reuse() == {}
    await db.record_token_reuse(kiosk_id, at=1_700_000_000.5)
    await asyncio.gather(*(db.record_token_reuse(kiosk_id, at=1_700_000_100.0) for _ in range(5)))
    assert await db.token_reuse() == {kiosk_id: TokenReuse(6, 1_700_000_100.0)}
    assert other_id not in await db.token_reuse()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_per_visit_rows_of_earlier_versions_become_daily_counters(backend, tmp_path, request):
    """An existing database with the old visit_stats table: its rows are folded in once, then the table is gone."""
    day, earlier = dt.date(2026, 3, 10), dt.date(2026, 3, 9)
    async with database_url(backend, tmp_path, request) as url:
        engine = sa.ext.asyncio.create_async_engine(url.replace("sqlite:", "sqlite+aiosqlite:", 1).replace(
            "postgresql:", "postgresql+asyncpg:", 1))
        async with engine.begin() as c:
            await c.execute(sa.text("CREATE TABLE visit_stats (id INTEGER PRIMARY KEY, department VARCHAR(40) "
                                    "NOT NULL, day DATE NOT NULL, wait_s INTEGER, duration_s INTEGER)"))
            for i, (dept, d, wait, duration) in enumerate([
                    ("standesamt", day, 60, 300), ("standesamt", day, 120, None), ("standesamt", day, 30, 500),
                    ("standesamt", earlier, None, None), ("ordnungsamt", day, 10, 100)]):
                await c.execute(sa.text("INSERT INTO visit_stats VALUES (:i, :dept, :d, :w, :du)"),
                                {"i": i + 1, "dept": dept, "d": d, "w": wait, "du": duration})
        await engine.dispose()

        db, second = await asyncio.gather(Database.open(url), Database.open(url))  # folded once, not twice
        try:
            assert await db.daily_stats(earlier) == [
                DailyStats(day, "standesamt", 3, 2, 75, 405),
                DailyStats(day, "ordnungsamt", 1, 1, 15, 105),
                DailyStats(earlier, "standesamt", 1, 0, None, None),
            ]
            async with db.engine.connect() as c:
                assert not await c.run_sync(lambda sync: sa.inspect(sync).has_table("visit_stats"))
            await db.record_visit("standesamt", day, 60, 300)
            assert (await db.daily_stats(day))[0].visits == 4
        finally:
            await db.close()
            await second.close()
        db = await Database.open(url)  # and a later start changes nothing
        try:
            assert (await db.daily_stats(day))[0].visits == 4
        finally:
            await db.close()

