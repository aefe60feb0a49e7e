"""The boot test's call on this machine: the appliance's CPU per minute of call with the settings the
QEMU guest runs it with (image/build/selftest/devices/appliance.toml), so that the guest's figure
(``call-cpu`` in ``./build.sh image-test``) can be given as a ratio to this one: QEMU emulates the
Pi's CPU in software, and only the ratio says something.

The appliance is the real one (appliance.service.main.start) with the guest's backends as far as this
machine has them: the V4L2 camera backend over vivid's recorded listing, its buffers (YUYV at the
guest's size and rate) replayed by FakeCapture as the kernel would hand them over (no vivid here);
the ALSA microphone and speaker on ALSA's null device, with the echo canceller; a clerk in Chromium
(fake camera and microphone) picks up through a central server.

    guest_call_appliance_cpu_s_per_min.idle              before the call
    guest_call_appliance_cpu_s_per_min.raw_320x180_vp8   in the call
"""
from __future__ import annotations

import asyncio
import os
import time
import tomllib
from pathlib import Path

import aiohttp

from bench._central import Server
from bench._common import BenchError, emit, note, run_in_tmp

NAME = "guest_call"
ROOT = Path(__file__).resolve().parents[1]
GUEST_SETTINGS = ROOT / "image/build/selftest/devices/appliance.toml"
VIVID = ROOT / "tests/appliance/data/v4l2/vivid.txt"
CHROMIUM = "/usr/bin/chromium"


def add_arguments(parser) -> None:
    parser.add_argument("--guest-call-s", type=float, default=None, help="guest_call: seconds measured in the call "
                        "(default 60; 20 with --quick)")


def guest_camera() -> dict:
    return tomllib.loads(GUEST_SETTINGS.read_text())["hardware"]["camera"]


def open_guest_hardware():
    """The guest's hardware where this machine has it: V4L2 backend over replayed vivid buffers, ALSA null."""
    from appliance.hardware.fake.usb_camera import FakeCapture, encode_stream, pictures
    from appliance.hardware.pi.v4l2.camera import UsbCamera
    from appliance.hardware.pi.v4l2.choose import Wanted
    from appliance.hardware.pi.v4l2.devices import parse_listing
    from appliance.hardware.select import open_hardware

    cfg = guest_camera()
    wanted = Wanted(cfg["format"], cfg["width"], cfg["height"], cfg["fps"])
    listing = parse_listing(VIVID.read_text(), "/dev/video0")

    def opener(path, mode):
        return FakeCapture(path, mode, encode_stream(pictures(mode.width, mode.height, 30), mode))

    hardware = open_hardware({"backend": "fake", "microphone": {"backend": "pi", "device": "null"},
                              "speaker": {"backend": "pi", "device": "null"}, "echo": {"enabled": True}})
    hardware.camera.close()
    hardware.camera = UsbCamera(wanted, "auto", lister=lambda paths: [listing], opener=opener)
    return hardware


async def _cpu_per_min(seconds: float, hardware) -> float:
    """The appliance's CPU as the guest counts it (the unit's cgroup): this process and the microphone's own."""
    cpu0, wall0 = _cpu_s(hardware), time.monotonic()
    await asyncio.sleep(seconds)
    return (_cpu_s(hardware) - cpu0) / (time.monotonic() - wall0) * 60


def _cpu_s(hardware) -> float:
    pid = getattr(hardware.microphone, "pid", None)  # capture and echo cancellation (process_microphone.py)
    if pid is None:
        return time.process_time()
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return time.process_time() + (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _main(tmp: Path, args) -> int:
    from playwright.async_api import async_playwright

    from appliance.config import ApplianceConfig
    from appliance.fleet.devices import DeviceBook
    from appliance.service.main import start
    from bench._common import CHROMIUM_FLAGS

    call_s = args.guest_call_s or (20.0 if args.quick else 60.0)
    server = Server(tmp)
    creds = server.demo_data()
    server.start()
    unit = None
    try:
        async with aiohttp.ClientSession() as session:
            await server.wait_ready(session)
        config = ApplianceConfig(central_url=server.url, token=creds["kiosk_token"], hardware={"backend": "fake"},
                                 kiosk_port=0, data_dir=tmp)
        unit = await start(config, hardware=open_guest_hardware(), devices=DeviceBook())
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True)
            page = await (await browser.new_context(permissions=["camera", "microphone"])).new_page()
            await page.goto(server.url + "/login")
            await page.fill("input[name=username]", creds["clerk_user"])
            await page.fill("input[name=password]", creds["clerk_password"])
            await page.click("button[type=submit]")
            await page.locator("[data-testid=connection-state][data-state=connected]").wait_for()
            await _until(lambda: unit.controller.view.online, 30, "the kiosk did not come online")
            idle = await _cpu_per_min(min(20.0, call_s), unit.hardware)
            button = unit.hardware.button
            await button.press()
            await button.long_press()
            await button.press()
            await page.locator("[data-testid=visit-row] [data-testid=pickup-button]").click()
            await _until(lambda: unit.controller.view.screen.value == "in_call" and unit.controller.view.camera_on, 60,
                         "the call did not start with the camera on")
            await asyncio.sleep(5)  # the encoder and the echo canceller settle
            in_call = await _cpu_per_min(call_s, unit.hardware)
            if unit.controller.view.screen.value != "in_call":
                raise BenchError(f"the call ended while it was measured: {unit.controller.view}")
            await browser.close()
    finally:
        if unit is not None:
            await unit.close()
        server.stop()
    cam = guest_camera()
    label = f"{cam['format']}_{cam['width']}x{cam['height']}_vp8"
    note(f"guest_call: the appliance (camera {unit.hardware.camera.name}, ALSA null with the echo canceller) "
         f"{in_call:.1f} CPU s per minute of call, {idle:.1f} idle; with the microphone's own process; this process includes Playwright's client")
    emit("guest_call_appliance_cpu_s_per_min.idle", idle, "s/min")
    emit(f"guest_call_appliance_cpu_s_per_min.{label}", in_call, "s/min")
    return 0


async def _until(predicate, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            raise BenchError(what)
        await asyncio.sleep(0.1)


def run(args) -> int:
    return run_in_tmp(NAME, lambda tmp: _main(tmp, args), "amtsklingel-guest-call-")
