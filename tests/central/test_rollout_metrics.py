"""/metrics during a rollout: each kiosk's update state, the counts per ring and state, and the
paused gauge, accepted by Debian's real promtool."""
from __future__ import annotations

import pytest

from central.config import Config
from central.updates import control
from tests.central.conftest import running_central
from tests.central.fleet_reports import health
from tests.central.rollout_helpers import NEW, OLD, Bundle, report
from tests.central.test_metrics import TOKEN, promtool, scrape


@pytest.fixture
async def central(tmp_path):
    config = Config(database_url=f"sqlite:///{tmp_path}/central.db", secure_cookies=False, metrics_token=TOKEN)
    async with running_central(config) as c:
        yield c


async def settled(kiosk) -> None:
    await kiosk.send(type="ping")
    await kiosk.recv("pong")


async def test_update_metrics_pass_promtool_and_count_per_ring_and_state(central):
    _, _, text = await scrape(central)
    assert "amtsklingel_rollout_paused{" not in text  # no rollout: no samples, the families still described
    admin = next(s for s in await central.db.all_staff() if s.username == "admin")
    ids, kiosks = [], []
    for location, version in [("Eins", OLD), ("Zwei", OLD), ("Drei", NEW), ("Vier", OLD)]:
        kid, token = await central.db.create_kiosk(location)
        kiosk = await central.kiosk(token)
        await kiosk.send(**health(version=version))
        await settled(kiosk)
        ids.append(kid)
        kiosks.append(kiosk)
    await control.start(central.app, admin, Bundle(7, NEW), ids[:3], "now", None)
    await kiosks[0].recv("update.offer")
    await kiosks[0].send(**report("downloading", progress_pct=10, downloaded_bytes=2048))
    await kiosks[1].recv("update.offer")
    await kiosks[1].send(**report("rolled_back", fault="boot_failed"))
    await settled(kiosks[0])
    await settled(kiosks[1])

    status, _, text = await scrape(central)
    assert status == 200
    checked = promtool("check", "metrics", stdin=text)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    lines = set(text.splitlines())
    assert f'amtsklingel_kiosk_update_state{{kiosk="{ids[0]}",version="{NEW}",state="downloading"}} 1' in lines
    assert f'amtsklingel_kiosk_update_downloaded_bytes{{kiosk="{ids[0]}",version="{NEW}"}} 2048' in lines
    assert f'amtsklingel_kiosk_update_state{{kiosk="{ids[1]}",version="{NEW}",state="rolled_back"}} 1' in lines
    labels = f'bundle="7",version="{NEW}"'
    assert f"amtsklingel_rollout_paused{{{labels}}} 1" in lines
    canary = {state: n for state, n in
              ((line.split('state="')[1].split('"')[0], int(line.rsplit(" ", 1)[1])) for line in lines
               if line.startswith(f'amtsklingel_rollout_kiosks{{{labels},ring="canary"'))}
    assert canary == {"waiting": 0, "offered": 0, "downloading": 1, "installed": 0, "rebooting": 0, "running": 1,
                      "rolled_back": 1, "failed": 0, "not_reached": 0}
    # the demo kiosk and "Vier": the ring "all" is not open
    assert f'amtsklingel_rollout_kiosks{{{labels},ring="all",state="not_reached"}} 2' in lines
