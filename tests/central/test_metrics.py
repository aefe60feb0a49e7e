"""GET /metrics: the bearer token, and output that Debian's real promtool accepts with kiosks in every state."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from central.config import Config, ConfigError
from central.fleet.metrics import escape
from tests.central.conftest import running_central
from tests.central.fleet_reports import health

PROMTOOL = "/usr/bin/promtool"
TOKEN = "metrics-token-for-the-test-0123456789abcdef"
ROOT = Path(__file__).resolve().parents[2]


def promtool(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    assert Path(PROMTOOL).exists(), "promtool is missing: apt-get install prometheus (./build.sh test does)"
    return subprocess.run([PROMTOOL, *args], input=stdin, capture_output=True, text=True, timeout=60)


@pytest.fixture
async def central(tmp_path):
    config = Config(database_url=f"sqlite:///{tmp_path}/central.db", secure_cookies=False, metrics_token=TOKEN)
    async with running_central(config) as c:
        yield c


async def scrape(central, token: str | None = TOKEN) -> tuple[int, str, str]:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    async with central.session.get(central.url + "/metrics", headers=headers) as r:
        return r.status, r.headers.get("Content-Type", ""), await r.text()


async def settled(kiosk) -> None:
    await kiosk.send(type="ping")
    await kiosk.recv("pong")


async def test_metrics_pass_promtool_with_kiosks_in_every_state(central):
    odd = await central.new_kiosk('Halle "Nord" \\ Eingang\nlinks')  # a location that needs escaping
    await odd.send(**health(camera="failed", temp=81.5, throttling=["throttled", "under_voltage"], faults=[
        {"code": "camera_failed", "device": "camera", "count": 2, "last_s_ago": 5},
        {"code": "software_error", "count": 1, "last_s_ago": 50},
        {"code": "echo_behind", "device": "microphone", "count": 17, "last_s_ago": 3}]))
    await settled(odd)
    bare = await central.new_kiosk("Ohne Werte")  # a report without the optional measurements
    await bare.send(**health(temp=None, used=None, total=None, rtt=None, slot=None, camera="unknown"))
    await settled(bare)
    await central.new_kiosk("Noch kein Bericht")  # online, nothing reported
    gone = await central.new_kiosk("Weg")
    await gone.send(**health())
    await settled(gone)
    await gone.ws.close()
    await central.db.create_kiosk("Nie verbunden")
    clerk = await central.clerk()
    await odd.send(type="visit.request", department="standesamt")
    await odd.recv("visit.queued")

    status, content_type, text = await scrape(central)
    assert status == 200 and content_type.startswith("text/plain; version=0.0.4")
    checked = promtool("check", "metrics", stdin=text)
    assert checked.returncode == 0, checked.stdout + checked.stderr

    kiosks = {k.location: str(k.id) for k in await central.db.kiosks()}
    odd_id = kiosks['Halle "Nord" \\ Eingang\nlinks']
    assert (f'amtsklingel_kiosk_up{{kiosk="{odd_id}",location="Halle \\"Nord\\" \\\\ Eingang\\nlinks"}} 1'
            in text.splitlines())
    assert f'amtsklingel_kiosk_up{{kiosk="{kiosks["Nie verbunden"]}",location="Nie verbunden"}} 0' in text
    assert f'amtsklingel_kiosk_device_ok{{kiosk="{odd_id}",device="camera"}} 0' in text
    assert f'amtsklingel_kiosk_device_ok{{kiosk="{kiosks["Ohne Werte"]}",device="camera"}}' not in text
    assert f'amtsklingel_kiosk_device_info{{kiosk="{odd_id}",device="microphone",name="USB Audio"}} 1' in text
    assert f'amtsklingel_kiosk_device_info{{kiosk="{odd_id}",device="speaker"' not in text  # not named yet
    assert f'amtsklingel_kiosk_cpu_temperature_celsius{{kiosk="{odd_id}"}} 81.5' in text
    assert f'amtsklingel_kiosk_throttled{{kiosk="{odd_id}",flag="under_voltage"}} 1' in text
    assert f'amtsklingel_kiosk_faults_total{{kiosk="{odd_id}",code="camera_failed"}} 2' in text
    # The echo canceller falling behind is counted while the microphone works.
    assert f'amtsklingel_kiosk_faults_total{{kiosk="{odd_id}",code="echo_behind"}} 17' in text
    assert f'amtsklingel_kiosk_device_ok{{kiosk="{odd_id}",device="microphone"}} 1' in text
    assert f'amtsklingel_kiosk_rtt_seconds{{kiosk="{odd_id}"}} 0.012' in text
    assert f'amtsklingel_kiosk_data_partition_size_bytes{{kiosk="{odd_id}"}} 8000000' in text
    assert f'amtsklingel_kiosk_build_info{{kiosk="{kiosks["Ohne Werte"]}",version="0.3.0+abc",slot="unknown"}} 1' in text
    assert re.search(rf'amtsklingel_kiosk_last_seen_timestamp_seconds\{{kiosk="{kiosks["Weg"]}",location="Weg"\}} '
                     r'1\d{9}\.\d+', text)
    assert 'amtsklingel_department_waiting_visits{department="standesamt"} 1' in text
    assert 'amtsklingel_department_clerks_online{department="buergerbuero"} 1' in text
    assert re.search(r'^amtsklingel_central_build_info\{version="[^"]+"\} 1$', text, re.M)
    assert re.search(r'^amtsklingel_central_leader 1$', text, re.M)  # one central on its own serves
    await clerk.ws.close()


async def test_metrics_need_the_bearer_token(central):
    assert (await scrape(central, None))[0] == 401
    status, _, text = await scrape(central, "wrong-token-of-the-right-length-0123456789ab")
    assert status == 401 and "metrics_token" in text
    async with central.session.get(central.url + "/metrics", headers={"Authorization": f"Basic {TOKEN}"}) as r:
        assert r.status == 401 and r.headers["WWW-Authenticate"].startswith("Bearer")


async def test_metrics_are_off_without_a_token_and_say_how_to_switch_them_on(tmp_path):
    config = Config(database_url=f"sqlite:///{tmp_path}/central.db", secure_cookies=False)
    async with running_central(config) as c:
        status, _, text = await scrape(c)
    assert status == 404 and "metrics_token" in text


@pytest.mark.parametrize("token", ["short", 12345678901234567890123456789012345, "x" * 31,
                                   "has a space in the middle of it 1234567"])
def test_a_short_or_odd_metrics_token_stops_start_up(token):
    with pytest.raises(ConfigError, match="metrics_token"):
        Config.from_dict({"database_url": "sqlite:///x.db", "metrics_token": token})


def test_label_values_are_escaped_as_the_text_format_says():
    assert escape('a"b\\c\nd') == 'a\\"b\\\\c\\nd'


def test_the_alert_rules_in_the_docs_pass_promtool():
    rules = ROOT / "docs" / "prometheus" / "amtsklingel-alerts.yml"
    checked = promtool("check", "rules", str(rules))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS" in checked.stdout and re.search(r"\b7 rules found", checked.stdout), checked.stdout


def test_the_alert_rules_fire_when_they_should():
    """promtool's rule unit test next to the rules: down only during office hours, camera, heat, an echo
    canceller falling behind again and again (not once), disk, rollout, leadership."""
    checked = subprocess.run([PROMTOOL, "test", "rules", "amtsklingel-alerts.test.yml"], capture_output=True,
                             text=True, timeout=60, cwd=ROOT / "docs" / "prometheus")
    assert checked.returncode == 0, checked.stdout + checked.stderr
