"""The updates page over HTTP as a browser posts it (CSRF, bad input): start a rollout to canary
kiosks, open the rings, pause with the reason in words, resume and stop, each in the audit log; and
the fleet page's update column."""
from __future__ import annotations

import html

import pytest

from central.updates.library import BundleUnavailable
from tests.central.fleet_reports import health
from tests.central.rollout_helpers import NEW, OLD, add_bundle, report
from tests.central.test_kiosk_settings import Admin


@pytest.fixture
async def admin(central):
    central.bundle_ids = [await add_bundle(central.db, NEW), await add_bundle(central.db, "0.5.0+later")]
    return Admin(central, await central.login("admin", central.credentials["admin_password"]))


async def settled(kiosk) -> None:
    await kiosk.send(type="ping")
    await kiosk.recv("pong")


def text(page: str) -> str:
    return " ".join(html.unescape(page).split())


async def test_start_open_rings_pause_by_a_rollback_resume_and_stop(central, admin):
    b = central.bundle_ids[0]
    kid, token = await central.db.create_kiosk("Bücherei Süd")
    kiosk = await central.kiosk(token)
    await kiosk.send(**health(version=OLD))
    other_id, other_token = await central.db.create_kiosk("Rathaus Nord")
    other = await central.kiosk(other_token)

    status, page = await admin.get("/admin/updates")
    assert status == 200 and 'data-testid="no-rollout"' in page and f"{NEW} (117.7 MB" in page

    # Without CSRF: refused, nothing starts.
    status, _, _ = await admin.post("/admin/updates/start", {"bundle": str(b), "canary": str(kid), "window": "now"},
                                    csrf=False)
    assert status == 403 and central.hub.updates.rollout is None
    # Bad input: the form comes back with the reason.
    for data, expected in [({"bundle": "99", "canary": str(kid), "window": "now"}, "Choose a bundle."),
                           ({"bundle": str(b), "window": "now"}, "Pick at least one canary kiosk"),
                           ({"bundle": str(b), "canary": str(kid), "window": "now", "max_kbit_s": "10"},
                            "The bandwidth cap is a whole number of kbit/s from 64"),
                           ({"bundle": str(b), "canary": str(kid), "window": "soon"}, "Choose when kiosks may install")]:
        status, _, page = await admin.post("/admin/updates/start", data)
        assert status == 400 and expected in text(page), data
    assert central.hub.updates.rollout is None

    status, location, _ = await admin.post("/admin/updates/start", {"bundle": str(b), "canary": str(kid),
                                                                      "window": "outside_hours", "max_kbit_s": "800"})
    assert (status, location) == (303, "/admin/updates?done=rollout-started")
    offer = await kiosk.recv("update.offer")
    assert (offer["bundle_id"], offer["max_kbit_s"], offer["window"]) == (b, 800, "outside_hours")
    assert offer["path"] == f"/updates/bundles/{b}/amtsklingel-{NEW}.raucb"
    rollout = central.hub.updates.rollout
    await kiosk.send(**report("downloading", bundle_id=b, progress_pct=45))
    await settled(kiosk)
    _, page = await admin.get("/admin/updates")
    assert 'data-ring="canary"><th scope="row">Canary kiosks</th>' in page
    assert '<td class="num" data-state="downloading">1</td>' in page

    # The fleet page: the update column, and the kiosk's detail page with version and time.
    _, page = await admin.get("/admin/fleet")
    assert "downloading (45 %)" in text(page)
    _, page = await admin.get(f"/admin/fleet/{kid}")
    assert "downloading (45 %)" in text(page) and f"Version {NEW}" in text(page)

    # The next ring: everyone (100 %).
    status, location, _ = await admin.post(f"/admin/updates/{rollout.id}/percent", {"percent": "100"})
    assert (status, location) == (303, "/admin/updates?done=rollout-percent")
    assert (await other.recv("update.offer"))["bundle_id"] == b
    status, _, page = await admin.post(f"/admin/updates/{rollout.id}/percent", {"percent": "50"})
    assert status == 409 and "Give a percentage larger than the one open now" in text(page)

    # A rollback pauses it; the page says why, in words.
    await kiosk.send(**report("rolled_back", bundle_id=b, fault="health_check_failed",
                             check="microphone"))
    assert (await other.recv("update.withdraw"))["bundle_id"] == b
    _, page = await admin.get("/admin/updates")
    assert (f'Paused: kiosk "Bücherei Süd" (no. {kid}) went back to its old version because the microphone '
            'failed its self-test.') in text(page)
    _, page = await admin.get("/admin/fleet")
    assert "rolled back: the microphone failed its self-test" in text(page)

    # German too.
    admin.session.cookie_jar.update_cookies({"ak_lang": "de"})
    _, page = await admin.get("/admin/updates")
    assert "Pausiert" in text(page)
    admin.session.cookie_jar.update_cookies({"ak_lang": "en"})

    assert (await admin.post(f"/admin/updates/{rollout.id}/resume", {}))[:2] == (
        303, "/admin/updates?done=rollout-resume")
    assert (await other.recv("update.offer"))["bundle_id"] == b
    assert (await admin.post(f"/admin/updates/{rollout.id}/pause", {}))[0] == 303
    assert (await other.recv("update.withdraw"))["bundle_id"] == b
    status, _, page = await admin.post(f"/admin/updates/{rollout.id}/all", {})
    assert status == 409 and "Resume the rollout before opening the next ring." in text(page)
    assert (await admin.post(f"/admin/updates/{rollout.id}/stop", {}))[0] == 303
    assert central.hub.updates.rollout is None
    status, _, page = await admin.post(f"/admin/updates/{rollout.id}/resume", {})
    assert status == 409 and "This rollout has ended or was replaced meanwhile." in text(page)

    entries = [(e.action, e.target) for e in await central.db.audit.recent()]
    assert entries == [("update.stop", f"bundle:{b}"), ("update.pause", f"bundle:{b}"), ("update.resume", f"bundle:{b}"),
                       ("update.percent", f"bundle:{b}"), ("update.start", f"bundle:{b}")]
    _, page = await admin.get("/admin/audit")
    assert "Update rollout started" in page and "Update rollout paused" in page


async def test_a_new_rollout_replaces_the_live_one_and_withdraws_its_bundle(central, admin):
    b, later = central.bundle_ids
    kid = int(central.credentials["kiosk_token"].split(".")[0])
    kiosk = await central.kiosk()
    await admin.post("/admin/updates/start", {"bundle": str(b), "canary": str(kid), "window": "now"})
    await kiosk.recv("update.offer")
    first = central.hub.updates.rollout
    status, _, _ = await admin.post("/admin/updates/start", {"bundle": str(later), "canary": str(kid), "window": "now"})
    assert status == 303
    assert (await kiosk.recv())["type"] == "update.withdraw"
    assert (await kiosk.recv("update.offer"))["bundle_id"] == later
    with pytest.raises(BundleUnavailable, match="a rollout of it is running"):
        await central.app["bundles"].remove(later)  # kiosks may be fetching it
    await central.app["bundles"].remove(b)          # its rollout ended
    history = await central.db.updates.rollouts()
    assert [(r.id, r.bundle_id, r.state) for r in history] == [(first.id + 1, later, "active"),
                                                                (first.id, b, "stopped")]
