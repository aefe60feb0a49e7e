"""City IT uploads bundles with the admin page in Chromium: a good one is listed, a refused one says why."""
from __future__ import annotations

from central.config import Config
from tests.browser import launch
from tests.central.bundle_fixtures import make
from tests.central.conftest import running_central


async def test_upload_in_the_browser(tmp_path):
    made = make(tmp_path / "made")
    config = Config(database_url=f"sqlite:///{tmp_path}/central.db", secure_cookies=False,
                    update_keyring=str(made.keys.ca_pem))
    errors: list[str] = []
    async with running_central(config) as central, launch() as browser:
        page = await (await browser.new_context(locale="en-GB")).new_page()
        # Script and CSP errors fail the test; "failed to load resource" is Chromium noting the refusal's 400
        # and the missing favicon, not an error of the page.
        page.on("console", lambda msg: msg.type == "error" and not msg.text.startswith("Failed to load resource")
                and errors.append(msg.text))
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        await page.goto(central.url + "/login")
        await page.fill("input[name=username]", central.credentials["admin_user"])
        await page.fill("input[name=password]", central.credentials["admin_password"])
        await page.click("button[type=submit]")
        await page.wait_for_url("**/console")
        await page.goto(central.url + "/admin/bundles")

        await page.set_input_files("input[name=bundle]", str(made.other_key))
        await page.click("text=Upload and check")
        refusal = page.locator("[data-testid=bundle-refused]")
        assert await refusal.get_attribute("data-fault") == "signature_invalid"
        assert "not signed with the city's update key" in await refusal.inner_text()

        await page.set_input_files("input[name=bundle]", str(made.good))
        await page.click("text=Upload and check")
        await page.wait_for_url("**/admin/bundles?done=bundle-added")
        row = page.locator("[data-testid=bundles] tbody tr")
        assert await row.count() == 1 and "1.1.0+good" in await row.inner_text()
        [info] = await central.app["bundles"].list()
        assert info.file.read_bytes() == made.good.read_bytes()
    assert errors == []
