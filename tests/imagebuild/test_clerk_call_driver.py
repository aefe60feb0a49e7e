"""image/build/clerk-call.py, the boot test's clerk, against a real central and a kiosk appliance (fake
devices) on loopback; the "console" is a file this test writes the guest's lines into, as QEMU's serial
port would. And how it judges what the clerk got, on recorded samples."""
from __future__ import annotations

import asyncio
import importlib.util
import json
import math
import sys
from pathlib import Path

import pytest

from appliance.config import ApplianceConfig
from appliance.fleet.devices import DeviceBook
from appliance.service.main import start
from tests.browser import require_isolated_network
from tests.central.conftest import central  # noqa: F401  (the running central)
from tests.polling import view_until

CLERK = Path(__file__).resolve().parents[2] / "image/build/clerk-call.py"
TAG = "AMTSKLINGEL-SELFTEST"
HELD = f"{TAG} INFO call-devices: the appliance holds /dev/snd/pcmC0D0p, /dev/video0 (vivid-000-vid-cap)"


def _driver():
    spec = importlib.util.spec_from_file_location("clerk_call", CLERK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _samples(levels: list[tuple[float, float]], frames_per_s: int = 10) -> list[dict]:
    """Clerk statistics every 0.5 s with the given received level (dBFS) from each moment on."""
    out, energy, duration, frames = [], 0.0, 0.0, 0
    for i in range(200):
        t = i * 0.5
        level = [lv for start, lv in levels if t >= start][-1]
        energy += 10 ** (level / 10) * 0.5
        duration += 0.5
        frames += frames_per_s // 2
        out.append({"t": t, "audio": {"energy": energy, "duration": duration},
                    "video": {"frames": frames, "width": 320, "height": 240}})
    return out


PHASES = [(10.0, "clerk-talks"), (60.0, "citizen-talks"), (85.0, "camera-unplug")]
GUEST_AUDIO = f"{TAG} PASS alsa-clerk-to-kiosk: the clerk's voice ... heard median -27.0 dBFS"


def test_audio_both_ways_needs_the_citizen_above_the_echo_and_the_guests_word():
    driver = _driver()
    # Only the clerk speaks: what comes back is echo residue (-70 dBFS); then the citizen (-30 dBFS).
    samples = _samples([(0, -90.0), (10, -70.0), (60, -30.0)])
    ok, detail = driver.judge_audio(samples, PHASES, GUEST_AUDIO)
    assert ok, detail
    assert "-30.0 dBFS" in detail and "-70.0 dBFS" in detail
    # The echo not removed: the clerk hears themselves as loud as the citizen.
    assert not driver.judge_audio(_samples([(0, -90.0), (10, -30.0)]), PHASES, GUEST_AUDIO)[0]
    # The guest's ALSA did not carry the clerk's voice.
    assert not driver.judge_audio(samples, PHASES, GUEST_AUDIO.replace("PASS", "FAIL"))[0]
    assert not driver.judge_audio(samples, PHASES, None)[0]


def test_video_must_move_and_come_from_the_guests_v4l2_device():
    driver = _driver()
    samples = _samples([(0, -60.0)])
    moving = [(t, f"picture {t}") for t in range(0, 30, 2)]
    assert driver.judge_video(samples, moving, HELD)[0]
    frozen = [(t, "the same picture") for t in range(0, 30, 2)]
    assert not driver.judge_video(samples, frozen, HELD)[0]
    fake_camera = f"{TAG} INFO call-devices: the appliance holds /dev/snd/pcmC0D0p"
    assert not driver.judge_video(samples, moving, fake_camera)[0]


def test_phase_windows_start_after_settling_and_end_at_the_next_phase():
    driver = _driver()
    assert driver.phase_window(PHASES, "citizen-talks") == (63.0, 85.0)
    assert driver.phase_window(PHASES, "camera-unplug")[1] == math.inf
    assert driver.phase_window(PHASES, "hangup") is None


@pytest.mark.browser
async def test_the_clerk_picks_up_the_guests_visit_and_judges_the_call(central, tmp_path, monkeypatch):  # noqa: F811
    require_isolated_network()
    monkeypatch.chdir(tmp_path)
    (tmp_path / "demo.json").write_text(json.dumps(central.credentials))
    console = tmp_path / "console.log"
    console.write_text("[   12.0] systemd[1]: Started amtsklingel-appliance.service\n")
    config = ApplianceConfig(central_url=central.url, token=central.credentials["kiosk_token"],
                             hardware={"backend": "fake"}, kiosk_port=0)
    unit = await start(config, devices=DeviceBook())
    clerk = await asyncio.create_subprocess_exec(
        sys.executable, str(CLERK), "--console", str(console), "--central", central.url,
        "--credentials", str(tmp_path / "demo.json"), "--timeout", "120", "--work", str(tmp_path),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)

    def guest(line: str) -> None:
        with console.open("a") as f:
            f.write(f"[  100.0] selftest.py[321]: {TAG} {line}\r\n")
    try:
        await view_until(unit, lambda v: v.online)
        button = unit.hardware.button
        await button.press()
        await button.long_press()
        await button.press()
        await view_until(unit, lambda v: v.position is not None)
        guest("INFO call-waiting: buergerbuero: screen waiting, position 1")
        await view_until(unit, lambda v: v.screen.value == "in_call", seconds=60)
        guest(HELD.removeprefix(f"{TAG} "))
        guest("INFO call-phase: clerk-talks: 20 s, the citizen silent")
        await asyncio.sleep(20)
        guest("INFO call-phase: citizen-talks: 8 s")
        await asyncio.sleep(8)
        guest("PASS alsa-clerk-to-kiosk: the clerk's voice at the microphone: heard median -27.0 dBFS")
        guest("INFO call-phase: hangup")
        guest("INFO call-ended: screen ended")
        out, err = await asyncio.wait_for(clerk.communicate(), 90)
    finally:
        if clerk.returncode is None:
            clerk.kill()
        await unit.close()
    lines = [line for line in out.decode().splitlines() if line.startswith(TAG)]
    assert any(line.startswith(f"{TAG} INFO clerk-picked-up") for line in lines), (lines, err.decode()[-2000:])
    # The fake camera's picture moves and the (pretended) guest held vivid's node: the video passes.
    assert any(line.startswith(f"{TAG} PASS v4l2-camera-call: ") for line in lines), lines
    # The fake microphone's tone does not stop when the citizen is silent: levels measured, judged apart.
    audio = next(line for line in lines if " alsa-loopback-audio: " in line)
    assert "dBFS" in audio and "none" not in audio.split("clerk -> kiosk")[0], audio
