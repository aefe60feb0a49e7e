"""Issue 9, "Done when": a fresh unit is enrolled by code and then looked after from central's admin pages.

The unit is the real appliance process (``python -m appliance``, fake hardware, no token); its
kiosk page and central's admin pages are in Debian's Chromium; central is the real one. A
fresh unit shows a code -> the admin enters it on the Kiosks page -> the kiosk shows the idle
screen and is online with its health on the fleet page -> a settings change (location,
departments) reaches the kiosk page -> the process is killed -> the fleet page shows it offline.

With AMTSKLINGEL_SCREENSHOTS set, the enrolment screen and the filled-in claim form are saved
there (docs/install.md uses them).
"""
from __future__ import annotations

import asyncio
import os
import signal
import socket
import stat
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SERIAL = "fake-e2e0c0de"
LOCATION = "Bücherei Musterdorf"
NEW_LOCATION = "Bücherei Musterdorf, Lesesaal"
WAIT_MS = 20_000  # bound for each step that crosses processes; the steps take well under a second when idle


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _answers(url: str) -> bool:
    try:
        urllib.request.urlopen(url, timeout=1).close()
        return True
    except OSError:
        return False


def _spawn_appliance(central_url: str, directory: Path, port: int) -> tuple[subprocess.Popen, Path]:
    """The appliance as systemd starts it, with fake hardware and no token; returns it and its log."""
    config = directory / "appliance.toml"
    config.write_text(f'central_url = "{central_url}"\ndata_dir = "{directory / "data"}"\n'
                      f'[kiosk]\nport = {port}\n[hardware]\nbackend = "fake"\n[hardware.unit]\nserial = "{SERIAL}"\n')
    log = directory / "appliance.log"
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "appliance", "--config", str(config),
                                    "--builtin", str(directory / "no-built-in-settings.toml")],
                                   cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
    return process, log


async def _start_appliance(central_url: str, directory: Path) -> tuple[subprocess.Popen, str, Path]:
    """The appliance process, once its kiosk page answers; returns it, its page and its log."""
    port = _free_port()
    process, log = _spawn_appliance(central_url, directory, port)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + WAIT_MS / 1000
    while not await asyncio.to_thread(_answers, url):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"the appliance did not serve its page (exit {process.poll()}):\n{log.read_text()}")
        await asyncio.sleep(0.2)
    return process, url, log


def _screenshot_path(name: str) -> str | None:
    if directory := os.environ.get("AMTSKLINGEL_SCREENSHOTS"):
        Path(directory).mkdir(parents=True, exist_ok=True)
        return str(Path(directory) / name)
    return None


async def _screenshot(page, name: str) -> None:
    if path := _screenshot_path(name):
        await page.screenshot(path=path, full_page=True)


async def _kiosk_row(admin, central_url: str, location: str, online: str) -> str:
    """Reload the fleet page until the kiosk at ``location`` shows ``online`` (yes/no); its kiosk id."""
    deadline = time.monotonic() + WAIT_MS / 1000
    while True:
        await admin.goto(central_url + "/admin/fleet?show=all")
        row = admin.locator("tr[data-kiosk]", has=admin.locator("th", has_text=location))
        if await row.count() == 1 and await row.get_attribute("data-online") == online:
            return await row.get_attribute("data-kiosk")
        if time.monotonic() > deadline:
            pytest.fail(f"the fleet page does not show {location!r} with online={online}:\n"
                        f"{await admin.locator('main').inner_text()}")
        await asyncio.sleep(0.3)


@pytest.mark.browser
async def test_a_fresh_unit_is_enrolled_by_code_then_managed_from_central(central, browser, tmp_path):
    unit, kiosk_url, log = await _start_appliance(central.url, tmp_path)
    try:
        # -- the fresh unit shows a code, its QR code and its serial number
        # Reduced motion: the screenshot shows the screen, not its fade-in.
        kiosk = await (await browser.new_context(viewport={"width": 1280, "height": 720}, locale="de-DE",
                                                 reduced_motion="reduce")).new_page()
        await kiosk.goto(kiosk_url)
        await kiosk.wait_for_function("""() => document.getElementById('kiosk').dataset.screen === 'enrol'
            && document.getElementById('enrol-code').textContent.length === 9
            && document.getElementById('enrol-qr').complete && document.getElementById('enrol-qr').naturalWidth > 0""",
                                      timeout=WAIT_MS)
        code = await kiosk.inner_text("#enrol-code")
        assert await kiosk.inner_text("#enrol-serial") == SERIAL
        assert not (tmp_path / "data" / "kiosk-token").exists()
        await _screenshot(kiosk, "enrol-kiosk-code.png")

        # -- the admin enters it on central's Kiosks page
        admin = await (await browser.new_context(viewport={"width": 1280, "height": 900}, locale="de-DE")).new_page()
        await admin.goto(central.url + "/login")
        await admin.fill("input[name=username]", central.credentials["admin_user"])
        await admin.fill("input[name=password]", central.credentials["admin_password"])
        async with admin.expect_navigation():
            await admin.press("input[name=password]", "Enter")
        await admin.goto(central.url + "/admin/kiosks")
        form = admin.locator("form[data-testid=enrol-form]")
        await form.locator("input[name=code]").fill(code)
        await form.locator("input[name=location]").fill(LOCATION)
        for box in await form.locator("input[name=departments]").all():
            await box.set_checked(await box.get_attribute("value") in ("buergerbuero", "standesamt"))
        await _screenshot(admin, "enrol-claim-form.png")
        async with admin.expect_navigation():
            await form.locator("button[type=submit]").click()

        # -- the kiosk goes to the idle screen by itself, with the location the admin gave
        await kiosk.wait_for_function("""(location) => document.getElementById('kiosk').dataset.screen === 'idle'
            && document.getElementById('location').textContent === location
            && document.getElementById('idle-offline').hidden""", arg=LOCATION, timeout=WAIT_MS)
        token_file = tmp_path / "data" / "kiosk-token"
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        assert token_file.read_text().strip() not in log.read_text()  # the token is never logged

        # -- online, with health, on the fleet page
        kiosk_id = await _kiosk_row(admin, central.url, LOCATION, "yes")
        await admin.goto(f"{central.url}/admin/fleet/{kiosk_id}")
        await admin.locator("[data-testid=health]").wait_for(timeout=WAIT_MS)

        # -- a settings change reaches the kiosk page: location, departments and their order
        await admin.goto(f"{central.url}/admin/fleet/{kiosk_id}/settings")
        settings = admin.locator("[data-testid=kiosk-settings] form").first
        await settings.locator("input[name=location]").fill(NEW_LOCATION)
        await settings.locator("input[name=departments_mode][value=chosen]").check()
        order = {"standesamt": "1", "ordnungsamt": "2"}
        for box in await settings.locator("input[name=department]").all():
            slug = await box.get_attribute("value")
            await box.set_checked(slug in order)
            if slug in order:
                await settings.locator(f"input[name=order_{slug}]").fill(order[slug])
        sent = time.monotonic()
        await settings.locator("button.primary").click()
        await kiosk.wait_for_function("""([location, names]) =>
            document.getElementById('location').textContent === location
            && JSON.stringify([...document.querySelectorAll('#office-list .office-name')].map((n) => n.textContent))
               === JSON.stringify(names)""", arg=[NEW_LOCATION, ["Standesamt", "Ordnungsamt"]], timeout=WAIT_MS)
        print(f"settings change reached the kiosk page after {(time.monotonic() - sent) * 1000:.0f} ms")

        # -- the unit dies: the fleet page shows it offline
        unit.send_signal(signal.SIGKILL)
        unit.wait(10)
        await _kiosk_row(admin, central.url, NEW_LOCATION, "no")
    finally:
        if unit.poll() is None:
            unit.kill()
            unit.wait(10)
