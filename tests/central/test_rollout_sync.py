"""The rollout changed elsewhere (another central process on the same database, or the command line)
reaches this process's kiosks: offers, withdrawals and ring changes."""
from __future__ import annotations

import asyncio

import aiohttp

from central.__main__ import main as central_main
from central.updates import control, sync
from tests.central.rollout_helpers import NEW, add_bundle, report
from tests.central.test_rollout import admin_of, central_again, kiosk_id, new_kiosk, settled


async def test_another_central_and_the_command_line_reach_this_centrals_kiosks(central, tmp_path, capsys):
    config = central.app["config"]
    bundle_id = await add_bundle(central.db, NEW)
    admin = await admin_of(central)
    far_id, _, _ = await new_kiosk(central, "Auf dem anderen Prozess")
    async with aiohttp.ClientSession() as session, central_again(config, central.credentials, session) as other:
        token = central.credentials["kiosk_token"]
        near = await other.kiosk(token)  # connected to the other process
        bundle = await central.app["bundles"].get(bundle_id)
        rollout = await control.start(central.app, admin, bundle, [kiosk_id(token), far_id], "now", None)
        assert await near.quiet() == []              # the other process does not know yet
        assert await sync.resync(other.app)
        assert (await near.recv("update.offer"))["bundle_id"] == bundle_id
        assert not await sync.resync(other.app)      # nothing new
        await near.send(**report("downloading", bundle_id=bundle_id, progress_pct=10))
        await settled(near)

        await control.pause(central.app, admin, rollout.id)
        assert await sync.resync(other.app)
        assert (await near.recv("update.withdraw"))["bundle_id"] == bundle_id

        # The command line resumes it; both processes follow.
        config_file = tmp_path / "central.toml"
        config_file.write_text(f'database_url = "{config.database_url}"\nsecure_cookies = false\n')
        assert await asyncio.to_thread(central_main, ["--config", str(config_file), "rollout", "resume"]) == 0
        assert await sync.resync(other.app) and await sync.resync(central.app)
        assert (await near.recv("update.offer"))["bundle_id"] == bundle_id
        assert central.hub.updates.rollout.state == other.hub.updates.rollout.state == "active"
        assert await asyncio.to_thread(central_main, ["--config", str(config_file), "rollout", "resume"]) == 1
        assert "The rollout is not paused." in capsys.readouterr().err
        assert await asyncio.to_thread(central_main, ["--config", str(config_file), "rollout", "status"]) == 0
        assert f"version {NEW}, active, ring canary" in capsys.readouterr().out

        # Stopped on the command line: withdrawn here too.
        assert await asyncio.to_thread(central_main, ["--config", str(config_file), "rollout", "stop"]) == 0
        assert await sync.resync(other.app)
        assert (await near.recv("update.withdraw"))["bundle_id"] == bundle_id
        assert other.hub.updates.rollout is None
        entries = [e.action for e in await central.db.audit.recent()]
        assert entries[:2] == ["update.stop", "update.resume"]


async def test_a_rollout_started_on_the_command_line_is_offered_by_a_running_central(central, tmp_path, capsys):
    bundle_id = await add_bundle(central.db, NEW)
    kiosk = await central.kiosk()
    config_file = tmp_path / "central.toml"
    config_file.write_text(f'database_url = "{central.app["config"].database_url}"\nsecure_cookies = false\n')
    kid = kiosk_id(central.credentials["kiosk_token"])
    args = ["--config", str(config_file), "rollout", "start", str(bundle_id), "--canary", str(kid), "--window", "now",
            "--max-kbit-s", "300"]
    assert await asyncio.to_thread(central_main, args) == 0
    assert await sync.resync(central.app)
    offer = await kiosk.recv("update.offer")
    assert (offer["bundle_id"], offer["window"], offer["max_kbit_s"]) == (bundle_id, "now", 300)
    assert await asyncio.to_thread(central_main, ["--config", str(config_file), "rollout", "percent", "100"]) == 0
    assert await sync.resync(central.app)
    assert central.hub.updates.rollout.percent == 100
    removing = ["--config", str(config_file), "bundles", "remove", str(bundle_id)]
    assert await asyncio.to_thread(central_main, removing) != 0  # kiosks may be fetching it
    assert "a rollout of it is running" in capsys.readouterr().err
    assert await asyncio.to_thread(central_main, [*args[:4], "99", "--canary", str(kid)]) == 1
    assert "there is no bundle 99" in capsys.readouterr().err
