"""The fleet page and a kiosk's detail page, through a real central: what city IT sees of each kiosk."""
from __future__ import annotations

import datetime as dt
import html
import re

import sqlalchemy as sa
from aiohttp import web

from central.app import create_app
from central.config import Config
from tests.central.conftest import running_central
from tests.central.fleet_reports import health

MONDAY_9 = dt.datetime(2026, 12, 7, 8, 0, tzinfo=dt.UTC)     # 09:00 in Berlin: the Ordnungsamt is open
SUNDAY_9 = dt.datetime(2026, 12, 6, 8, 0, tzinfo=dt.UTC)     # every department but the demo's 24/7 ones closed


async def admin(central):
    session = await central.login("admin", central.credentials["admin_password"])
    session.cookie_jar.update_cookies({"ak_lang": "en"})
    return session


async def get(session, url: str) -> str:
    async with session.get(url) as r:
        assert r.status == 200, await r.text()
        return await r.text()


async def settled(kiosk) -> None:
    """Everything the kiosk sent before has been handled (the hub answers in order)."""
    await kiosk.send(type="ping")
    await kiosk.recv("pong")


def row(page: str, kiosk_id: int) -> str:
    found = re.search(rf'<tr data-kiosk="{kiosk_id}".*?</tr>', page, re.S)
    assert found, f"no row for kiosk {kiosk_id}"
    return found.group(0)


def light(row_html: str, name: str) -> tuple[str, str]:
    """(level, visible text) of one light in a row."""
    found = re.search(rf'data-light="{name}" data-level="(\w+)"(?: title="[^"]*")?><span[^>]*>[^<]*</span> ([^<]*)</td>', row_html)
    assert found, f"no {name} light"
    return found.group(1), html.unescape(found.group(2)).strip()


async def test_fleet_page_shows_each_kiosks_state_lights_and_calls(central):
    sick = await central.new_kiosk("Bücherei Nord")
    await sick.send(**health(camera="failed", temp=83.0, throttling=["throttled"], used=7_900_000, rtt=450.0))
    await settled(sick)
    quiet = await central.new_kiosk("Rathaus Süd")  # online, no report yet
    gone = await central.new_kiosk("Feuerwehrhaus")
    await gone.send(**health())
    await settled(gone)
    await gone.ws.close()
    _, never_token = await central.db.create_kiosk("Schule (never connected)")
    for _ in range(50):
        if not central.hub.fleet.kiosks[max(central.hub.fleet.kiosks)].online:
            break
        await sick.quiet(0.05)
    ids = {k.location: k.id for k in await central.db.kiosks()}

    # a call from the sick kiosk: counted as today's
    clerk = await central.clerk()
    await sick.send(type="visit.request", department="buergerbuero")
    queued = await sick.recv("visit.queued")
    await clerk.send(type="visit.pickup", visit_id=queued["visit_id"])
    await sick.recv("call.start")

    page = await get(await admin(central), central.url + "/admin/fleet")
    sick_row = row(page, ids["Bücherei Nord"])
    assert light(sick_row, "camera") == ("bad", "failed")
    assert light(sick_row, "microphone") == ("ok", "works")
    assert light(sick_row, "speaker") == ("none", "not tested yet")
    assert 'data-light="microphone" data-level="ok" title="USB Audio"' in sick_row  # the device in use
    assert light(sick_row, "temperature") == ("bad", "too hot (83 °C), slowed down")
    assert light(sick_row, "disk") == ("bad", "99 % full")
    assert light(sick_row, "connection") == ("warn", "450 ms round trip")
    assert 'data-testid="calls-today">1<' in sick_row and "0.3.0+abc" in sick_row
    assert "online since" in sick_row

    assert light(row(page, ids["Rathaus Süd"]), "camera") == ("none", "no report")
    gone_row = row(page, ids["Feuerwehrhaus"])
    assert "offline since" in gone_row and light(gone_row, "camera") == ("ok", "works")  # its last report
    assert "never connected" in row(page, ids["Schule (never connected)"])

    # offline while its departments (all, by default; the demo's Bürgerbüro is always open) are open
    flagged = re.search(r'data-testid="flagged".*?</section>', page, re.S).group(0)
    assert "Feuerwehrhaus" in flagged and "Schule (never connected)" in flagged
    assert "Bücherei Nord" not in flagged and "Rathaus Süd" not in flagged
    assert page.index("Feuerwehrhaus") < page.index("Bücherei Nord")  # flagged ones lead the table too

    offline_only = await get(await admin(central), central.url + "/admin/fleet?show=offline")
    assert "Feuerwehrhaus" in offline_only and "Bücherei Nord" not in offline_only
    problems = await get(await admin(central), central.url + "/admin/fleet?show=problems")
    assert "Bücherei Nord" in problems and "Rathaus Süd" not in problems
    await quiet.ws.close()


async def test_offline_flag_follows_the_office_hours_of_the_kiosks_own_departments(central):
    kiosk = await central.new_kiosk("Ortsteil Ost")
    await kiosk.ws.close()
    kiosk_id = next(k.id for k in await central.db.kiosks() if k.location == "Ortsteil Ost")
    await central.db.kiosk_settings.update(kiosk_id, departments=["ordnungsamt"])
    session = await admin(central)
    central.clock.fixed = SUNDAY_9
    assert "Ortsteil Ost" not in re.search(r'data-testid="flagged".*?</section>',
                                           await get(session, central.url + "/admin/fleet"), re.S).group(0)
    central.clock.fixed = MONDAY_9
    assert "Ortsteil Ost" in re.search(r'data-testid="flagged".*?</section>',
                                       await get(session, central.url + "/admin/fleet"), re.S).group(0)


async def test_detail_page_shows_the_last_report_selftest_faults_and_settings_versions(central):
    kiosk = await central.new_kiosk("Bücherei Nord")
    kiosk_id = next(k.id for k in await central.db.kiosks() if k.location == "Bücherei Nord")
    await kiosk.send(**health(faults=[{"code": "camera_failed", "device": "camera", "count": 3, "last_s_ago": 120}]))
    await kiosk.send(type="kiosk.selftest", started_by="button", items=[
        {"item": "camera", "result": "pass", "device": "imx708"},
        {"item": "sound_loop", "result": "fail", "fault": "tone_not_heard"}])
    await kiosk.send(type="kiosk.settings.applied", version=1)
    await settled(kiosk)
    session = await admin(central)
    page = await get(session, central.url + f"/admin/fleet/{kiosk_id}")
    assert "camera_failed" in page and "tone_not_heard" in page and "imx708" in page
    assert '<td data-testid="device-name">USB Audio</td>' in page  # the microphone in use, from the health report
    assert "version 1 applied" in page and "all departments" in page
    await central.db.kiosk_settings.update(kiosk_id, departments=["standesamt"])
    page = await get(session, central.url + f"/admin/fleet/{kiosk_id}")
    assert "version 1 applied, the current one is 2" in page and "Standesamt" in page
    assert "1 h 2 min" in page and "power_on" in page
    assert 'id="kiosk-settings"' in page and 'data-testid="kiosk-actions"' in page  # settings and actions
    async with (await admin(central)).get(central.url + "/admin/fleet/99999") as r:
        assert r.status == 404


async def test_fleet_page_makes_no_query_per_kiosk(central):
    """The same number of queries for 3 kiosks as for 60: the state comes from memory."""
    session = await admin(central)
    statements: list[str] = []

    def count(conn, cursor, statement, *args):  # noqa: ANN001 - SQLAlchemy's event signature
        statements.append(statement)

    async def queries() -> int:
        statements.clear()
        await get(session, central.url + "/admin/fleet")
        return len(statements)

    sa.event.listen(central.db.engine.sync_engine, "before_cursor_execute", count)
    try:
        for i in range(2):
            await central.new_kiosk(f"Klein {i}")
        few = await queries()
        for i in range(57):
            await central.db.create_kiosk(f"Gross {i}")
        assert await queries() == few
    finally:
        sa.event.remove(central.db.engine.sync_engine, "before_cursor_execute", count)
    page = await get(session, central.url + "/admin/fleet?per_page=10&page=2")
    assert page.count("<tr data-kiosk=") == 10


async def test_last_seen_offline_since_and_calls_today_survive_a_restart(tmp_path):
    config = Config(database_url=f"sqlite:///{tmp_path}/central.db", secure_cookies=False)
    async with running_central(config) as central:
        kiosk = await central.kiosk()
        kiosk_id = next(iter(central.hub.kiosks))
        await kiosk.send(**health(version="1.2.3"))
        clerk = await central.clerk()
        await kiosk.send(type="visit.request", department="buergerbuero")
        queued = await kiosk.recv("visit.queued")
        await clerk.send(type="visit.pickup", visit_id=queued["visit_id"])
        await kiosk.recv("call.start")
        await kiosk.ws.close()
        for _ in range(100):
            if not central.hub.fleet.kiosks[kiosk_id].online:
                break
            await clerk.quiet(0.02)
        before = central.hub.fleet.kiosks[kiosk_id]
        offline_since, calls, last_call = before.since, before.calls, before.last_call_at
        assert not before.online and calls == 1
    # Central again on the same database (not running_central: it would seed the demo data twice).
    app = create_app(config)
    runner = web.AppRunner(app, shutdown_timeout=1)
    await runner.setup()
    try:
        after = app["hub"].fleet.kiosks[kiosk_id]
        assert (after.online, after.since, after.last_seen, after.version) == (False, offline_since, offline_since,
                                                                                "1.2.3")
        assert (after.calls_on(app["hub"].fleet.today()), after.last_call_at) == (1, last_call)
    finally:
        await runner.cleanup()


async def test_a_kiosk_online_when_central_died_is_offline_since_centrals_last_heartbeat(tmp_path):
    """No orderly stop (SIGKILL, power cut): the row still says online; the next central takes the last
    heartbeat of the one that died as the start of the outage."""
    config = Config(database_url=f"sqlite:///{tmp_path}/central.db", secure_cookies=False)
    async with running_central(config) as central:
        kiosk = await central.kiosk()  # kept open until central "dies"
        kiosk_id = next(iter(central.hub.kiosks))
        connected_at = central.hub.fleet.kiosks[kiosk_id].since
        fleet = central.hub.fleet
        fleet.clock = lambda: connected_at + 50  # the periodic write, 50 s later
        await central.app["fleet_writer"].flush()
        central.app["write_fleet"].cancel()
        central.app["fleet_writer"].flush = _nothing  # the orderly stop's last write does not happen
        assert fleet.kiosks[kiosk_id].online and not kiosk.ws.closed
    app = create_app(config)
    runner = web.AppRunner(app, shutdown_timeout=1)
    await runner.setup()
    try:
        after = app["hub"].fleet.kiosks[kiosk_id]
        assert (after.online, after.since, after.last_seen) == (False, connected_at + 50, connected_at + 50)
    finally:
        await runner.cleanup()


async def _nothing() -> None:
    return None


async def test_the_fleet_list_reads_departments_and_versions_as_the_settings_store_merges_them(central):
    """The fleet page reads the settings tables in its one query; it must agree with KioskSettingsStore."""
    ids = [(await central.db.create_kiosk(f"K{i}"))[0] for i in range(4)]
    store = central.db.kiosk_settings
    await store.update(None, departments=["standesamt", "buergerbuero"])
    await store.update(ids[1], departments=["ordnungsamt"])
    await store.update(ids[2], volume_pct=30)
    await store.update(ids[2], volume_pct=40)
    await store.update(ids[3], departments=["ordnungsamt"])
    await store.update(ids[3], departments=None)  # back to the all-kiosks choice
    slugs = [d.slug for d in await central.db.departments()]
    expected = await store.effective_many({i: f"K{n}" for n, i in enumerate(ids)}, slugs)
    listed = {k.kiosk.id: k for k in await central.db.fleet.kiosks()}
    for kiosk_id in ids:
        assert listed[kiosk_id].settings_version == expected[kiosk_id].version
        assert list(listed[kiosk_id].departments) == expected[kiosk_id].departments
    await store.update(None, departments=None)
    assert (await central.db.fleet.kiosks(only_id=ids[0]))[0].departments is None


async def test_an_echo_canceller_falling_behind_shows_in_words_with_what_to_do(central):
    busy = await central.new_kiosk("Bücherei West")
    await busy.send(**health(faults=[{"code": "echo_behind", "device": "microphone", "count": 42, "last_s_ago": 90}]))
    await settled(busy)
    long_ago = await central.new_kiosk("Rathaus Ost")  # fell behind once, hours ago: works as it should now
    await long_ago.send(**health(faults=[{"code": "echo_behind", "device": "microphone", "count": 1,
                                          "last_s_ago": 5 * 3600}]))
    await settled(long_ago)
    ids = {k.location: k.id for k in await central.db.kiosks()}
    session = await admin(central)
    page = await get(session, central.url + "/admin/fleet")
    # The microphone works (the kiosk says ok), but calls had an echo lately: amber, and among the problems.
    assert light(row(page, ids["Bücherei West"]), "microphone") == ("warn", "works, but its echo canceller falls behind")
    assert light(row(page, ids["Rathaus Ost"]), "microphone") == ("ok", "works")
    problems = await get(session, central.url + "/admin/fleet?show=problems")
    assert "Bücherei West" in problems and "Rathaus Ost" not in problems

    said = ("Echo canceller fell behind (the unit's CPU is too busy): lower the camera's size or rate, "
            "or use a faster unit")
    detail = html.unescape(await get(session, central.url + f"/admin/fleet/{ids['Bücherei West']}"))
    faults = re.search(r'data-testid="faults".*?</table>', detail, re.S).group(0)
    assert re.search(r"<code>echo_behind</code></td><td>microphone</td><td class=\"num\">42</td><td>1 min ago</td>"
                     r'<td data-fault="echo_behind">' + re.escape(said) + "</td>", faults)
    assert f"<code>echo_behind</code> {said}" in detail  # beside the microphone's light
    session.cookie_jar.update_cookies({"ak_lang": "de"})  # German, the default
    german = html.unescape(await get(session, central.url + f"/admin/fleet/{ids['Bücherei West']}"))
    assert "Echounterdrückung kam nicht mehr nach" in german and "schnelleres Gerät" in german


def test_every_fault_code_is_shown_in_words():
    from central.fleet.fault_words import FAULTS, fault_text
    from central.i18n import gettext_for
    from protocol.fleet import FAULT_CODES
    for locale in ("de", "en"):
        _ = gettext_for(locale)
        texts = [fault_text(_, code) for code in FAULT_CODES]
        assert all(":" in text and text != code for text, code in zip(texts, FAULT_CODES, strict=True)), locale
        assert len(set(texts)) == len(FAULTS) == len(FAULT_CODES)  # each says something of its own
    assert fault_text(gettext_for("en"), "from_a_newer_kiosk") == "from_a_newer_kiosk"
