"""Debian's Chromium driven by Playwright, for the tests: flags, launch, a page that fails the
test on any script error, a Flask app served on a thread, and reading pictures back from a page.

Never a downloaded browser: always ``/usr/bin/chromium`` (./build.sh test installs it).
"""
from __future__ import annotations

import asyncio
import os
import shutil
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

import pytest
from werkzeug.serving import make_server

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
WEBRTC_FLAGS = CHROMIUM_FLAGS + [  # fake camera and microphone, WebRTC over loopback, sound without a click
    "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
    "--allow-loopback-in-peer-connection", "--autoplay-policy=no-user-gesture-required",
]

# JavaScript for page scripts and page.evaluate: bytes as base64, and the green channel of a picture
# (= the luma on the test pattern's grey band, where its clock is) as base64 bytes.
BASE64_JS = """function base64(bytes) {
  let s = ''; for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  return btoa(s);
}"""
GREEN_JS = BASE64_JS + """
function green(src, sw, sh, dw = sw, dh = sh) {  // src's top left sw x sh, drawn at dw x dh
  const k = document.createElement('canvas'); k.width = dw; k.height = dh;
  const g = k.getContext('2d', { willReadFrequently: true }); g.drawImage(src, 0, 0, sw, sh, 0, 0, dw, dh);
  const d = g.getImageData(0, 0, dw, dh).data, y = new Uint8Array(dw * dh);
  for (let i = 0; i < y.length; i++) y[i] = d[4 * i + 1];
  return base64(y);
}"""


def require_chromium() -> None:
    if not shutil.which(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: ./build.sh test installs Debian's chromium package")


def require_isolated_network() -> None:
    """WebRTC gathers candidates on every interface: only run where loopback is all there is."""
    # /proc/self/net belongs to this process's namespace (/sys/class/net may show the host's).
    with open("/proc/self/net/dev") as f:
        interfaces = {line.split(":")[0].strip() for line in f.readlines()[2:]}
    if os.environ.get("AMTSKLINGEL_NETNS") != "1" or interfaces != {"lo"}:
        pytest.fail("WebRTC tests run only in a loopback-only network namespace: "
                    "use ./build.sh test or tools/netns-run .venv/bin/python -m pytest tests/appliance tests/e2e")
    require_chromium()


@asynccontextmanager
async def launch(args: list[str] = CHROMIUM_FLAGS, **options) -> AsyncIterator:
    """Debian's headless Chromium; ``options`` go to Playwright's launch."""
    require_chromium()
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=args, headless=True, **options)
        try:
            yield browser
        finally:
            await browser.close()


@asynccontextmanager
async def open_page(url: str, ready_js: str, *, args: list[str] = CHROMIUM_FLAGS, **context) -> AsyncIterator:
    """``url`` in a fresh Chromium, once ``ready_js`` holds; fails the test on a console error or
    script error (CSP violations land there too). ``context`` goes to ``browser.new_context``."""
    errors: list[str] = []
    async with launch(args) as browser:
        page = await (await browser.new_context(**context)).new_page()
        page.on("console", lambda msg: msg.type == "error" and errors.append(msg.text))
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        await page.goto(url)
        await page.wait_for_function(ready_js)
        yield page
    assert errors == [], errors


@contextmanager
def serve(app) -> Iterator[str]:
    """``app`` on a loopback port, on a thread; yields its base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


async def poll(probe, until, seconds: float = 20.0, every: float = 0.1):
    """Await ``probe()`` until ``until(result)``; bounded in time. Returns the last result."""
    deadline = asyncio.get_running_loop().time() + seconds
    result = None
    while asyncio.get_running_loop().time() < deadline:
        result = await probe()
        if until(result):
            return result
        await asyncio.sleep(every)
    raise AssertionError(f"gave up after {seconds} s; last observation: {result!r}")
