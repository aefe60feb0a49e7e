"""Settings from central's admin reach a running appliance process (``python -m appliance``, fake
hardware) and its kiosk page in Chromium at once; the appliance confirms them and keeps them on its
data partition, so a start without central shows the same location and offices. Central's
"restart" makes the process exit cleanly, for systemd to start it again."""
from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
from pathlib import Path

import aiohttp

from tests.browser import open_page, poll, require_isolated_network
from tests.central.test_kiosk_settings import Admin, form, kiosk_id

ROOT = Path(__file__).resolve().parents[2]
SHOWN_JS = """() => ({
  location: document.querySelector('#location').textContent,
  offices: [...document.querySelectorAll('#office-list > *')].map((e) => e.textContent.trim()),
  languages: [...document.querySelectorAll('#languages [data-language]')].filter((b) => !b.hidden)
    .map((b) => b.dataset.language),
  online: window.amtsklingel.view.online,
})"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ApplianceProcess:
    """``python -m appliance`` as systemd runs it, with its own settings file and data directory."""

    def __init__(self, tmp_path: Path, central_url: str, token: str) -> None:
        self.data = tmp_path / "data"
        self.data.mkdir(exist_ok=True)
        (self.data / "kiosk-token").write_text(token + "\n")
        self.port = free_port()
        self.config = tmp_path / "appliance.toml"
        self.config.write_text(f'central_url = "{central_url}"\ndata_dir = "{self.data}"\n'
                               f'[hardware]\nbackend = "fake"\n[kiosk]\nport = {self.port}\n')
        self.log = tmp_path / "appliance.log"
        self.proc: asyncio.subprocess.Process | None = None

    @property
    def page_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "appliance", "--config", str(self.config), "--builtin", str(self.config),
            cwd=ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1"}, stdout=self.log.open("ab"),
            stderr=asyncio.subprocess.STDOUT)

    async def page_ready(self) -> None:
        async def answers() -> bool:
            try:
                async with aiohttp.ClientSession() as http, http.get(self.page_url) as r:
                    return r.status == 200
            except aiohttp.ClientError:
                return False
        await poll(answers, bool, seconds=60)

    async def exited(self, seconds: float = 20.0) -> int:
        async with asyncio.timeout(seconds):
            return await self.proc.wait()

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.terminate()
            await self.exited()


async def test_settings_reach_the_appliance_page_are_kept_for_an_offline_start_and_restart_exits(
        central, tmp_path):
    require_isolated_network()
    kid = kiosk_id(central)
    admin = Admin(central, await central.login("admin", central.credentials["admin_password"]))
    unit = ApplianceProcess(tmp_path, central.url, central.credentials["kiosk_token"])
    await unit.start()
    try:
        fleet = central.hub.fleet
        await poll(lambda: _value(fleet.state(kid).settings_applied), lambda v: v == 1, seconds=60)

        async with open_page(unit.page_url, "window.amtsklingel && window.amtsklingel.view.online") as page:
            shown = await page.evaluate(SHOWN_JS)
            assert shown["location"] == "Rathaus Musterdorf, Foyer" and len(shown["languages"]) == 6
            status, _, _ = await admin.post(f"/admin/fleet/{kid}/settings", form(
                location="Bücherei Nord", departments_mode="chosen", department=["standesamt", "buergerbuero"],
                order_standesamt="1", order_buergerbuero="2", language=["de", "tr", "uk"], volume_pct="35"))
            assert status == 303
            shown = await poll(lambda: page.evaluate(SHOWN_JS), lambda s: s["location"] == "Bücherei Nord")
            assert offices(shown) == ["Standesamt", "Bürgerbüro"]
            assert shown["languages"] == ["de", "tr", "uk"]
        await poll(lambda: _value(fleet.state(kid).settings_applied), lambda v: v == 2)
        stored = json.loads((unit.data / "settings.json").read_text())["settings"]
        assert (stored["version"], stored["location"], stored["volume_pct"]) == (2, "Bücherei Nord", 35)

        # Central's "restart": the process ends cleanly, and systemd (Restart=always) starts it again.
        assert (await admin.post(f"/admin/fleet/{kid}/action", {"action": "restart"}))[0] == 303
        assert await unit.exited() == 0
        assert list(fleet.state(kid).action_results.values()) == ["started"]
    finally:
        await unit.stop()

    # Started again where central cannot be reached: the last location and offices all the same.
    offline = ApplianceProcess(tmp_path, f"http://127.0.0.1:{free_port()}", central.credentials["kiosk_token"])
    await offline.start()
    try:
        await offline.page_ready()
        async with open_page(offline.page_url, "window.amtsklingel && window.amtsklingel.renders > 0") as page:
            shown = await poll(lambda: page.evaluate(SHOWN_JS), lambda s: s["location"] == "Bücherei Nord")
            assert not shown["online"]
            assert offices(shown) == ["Standesamt", "Bürgerbüro"]
    finally:
        await offline.stop()


def offices(shown: dict) -> list[str]:
    """The offices listed, by name (each entry also says whether it is open)."""
    return [next(name for name in ("Standesamt", "Bürgerbüro", "Ordnungsamt", "Bürgermeister") if o.startswith(name))
            for o in shown["offices"]]


async def _value(value):
    return value
