"""City IT rolls an update out with the admin page in Chromium: picks a canary kiosk, starts, and sees a
rollback pause the rollout with the reason in words; resumes; the fleet page shows the kiosk's update."""
from __future__ import annotations

from central.config import Config
from tests.browser import launch
from tests.central.conftest import running_central
from tests.central.rollout_helpers import NEW, add_bundle, report


async def test_start_a_rollout_and_see_why_it_paused_in_the_browser(tmp_path):
    config = Config(database_url=f"sqlite:///{tmp_path}/central.db", secure_cookies=False)
    errors: list[str] = []
    async with running_central(config) as central, launch() as browser:
        bundle_id = await add_bundle(central.db, NEW)
        kid, token = await central.db.create_kiosk("Bücherei am Markt")
        kiosk = await central.kiosk(token)
        page = await (await browser.new_context(locale="en-GB")).new_page()
        page.on("console", lambda msg: msg.type == "error" and not msg.text.startswith("Failed to load resource")
                and errors.append(msg.text))
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        await page.goto(central.url + "/login")
        await page.fill("input[name=username]", central.credentials["admin_user"])
        await page.fill("input[name=password]", central.credentials["admin_password"])
        await page.click("button[type=submit]")
        await page.wait_for_url("**/console")
        await page.goto(central.url + "/admin")
        await page.click("nav.admin-nav >> text=Updates")
        await page.wait_for_url("**/admin/updates")

        await page.select_option("select[name=bundle]", str(bundle_id))
        await page.select_option("select[name=canary]", [str(kid)])
        await page.check("input[name=window][value=now]")
        await page.fill("input[name=max_kbit_s]", "1500")
        await page.click("text=Start rollout")
        await page.wait_for_url("**/admin/updates?done=rollout-started")
        offer = await kiosk.recv("update.offer")
        assert (offer["bundle_id"], offer["window"], offer["max_kbit_s"]) == (bundle_id, "now", 1500)
        assert await page.get_attribute("[data-testid=rollout]", "data-state") == "active"

        await kiosk.send(**report("rolled_back", bundle_id=bundle_id, fault="boot_failed"))
        await kiosk.send(type="ping")
        await kiosk.recv("pong")
        await page.reload()
        reason = await page.inner_text("[data-testid=pause-reason]")
        assert reason == (f'Paused: kiosk "Bücherei am Markt" (no. {kid}) went back to its old version because the '
                          "new version did not start (it hung or crashed). Look at that kiosk, then resume the "
                          "rollout or stop it.")
        await page.click("button:has-text('Resume')")
        await page.wait_for_url("**/admin/updates?done=rollout-resume")
        assert await page.get_attribute("[data-testid=rollout]", "data-state") == "active"

        await page.goto(central.url + "/admin/fleet")
        cell = page.locator(f"tr[data-kiosk='{kid}'] td.update")
        assert await cell.get_attribute("data-update") == "rolled_back"
        assert await cell.inner_text() == "rolled back: the new version did not start (it hung or crashed)"
    assert errors == []
