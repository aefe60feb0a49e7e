"""A real headless Chromium (Debian's) driven by Playwright, in a loopback-only namespace."""
from __future__ import annotations

import os
import shutil

import pytest
import pytest_asyncio

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
    "--allow-loopback-in-peer-connection", "--autoplay-policy=no-user-gesture-required",
]

from tests.central.conftest import central  # noqa: F401  (the running central, shared fixture)


def _require_isolated_network() -> None:
    """WebRTC gathers candidates on every interface: only run where loopback is all there is."""
    # /proc/self/net belongs to this process's namespace (/sys/class/net may show the host's).
    with open("/proc/self/net/dev") as f:
        interfaces = {line.split(":")[0].strip() for line in f.readlines()[2:]}
    if os.environ.get("AMTSKLINGEL_NETNS") != "1" or interfaces != {"lo"}:
        pytest.fail("end-to-end WebRTC tests run only in a loopback-only network namespace: "
                    "use ./build.sh test or tools/netns-run .venv/bin/python -m pytest tests/e2e")
    if not shutil.which(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: ./build.sh test installs Debian's chromium package")


@pytest_asyncio.fixture
async def browser(tmp_path):
    _require_isolated_network()
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS,
                                           ignore_default_args=["--mute-audio"], headless=True)
        yield browser
        await browser.close()
