"""Debian's firefox-esr as a clerk's browser in the tests, driven over WebDriver BiDi.

Firefox speaks WebDriver BiDi, not the Chrome DevTools protocol Playwright drives Chromium with, and
Playwright's own Firefox is a patched build it would download. So puppeteer-core (from npm, pinned in
package-lock.json next to this file; ``./build.sh test`` runs ``npm ci`` here with
``PUPPETEER_SKIP_DOWNLOAD=1``) drives ``/usr/bin/firefox-esr`` from ``driver.mjs``, and this module
talks to that script over its stdin and stdout, one JSON line each way.
"""
from __future__ import annotations

import asyncio
import json
import os
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

FIREFOX = "/usr/bin/firefox-esr"
HERE = Path(__file__).resolve().parent
DRIVER = HERE / "driver.mjs"
START_S = 60.0  # Firefox's first start with a fresh profile, on a busy machine
STEP_S = 60.0


def require_firefox() -> None:
    """Firefox, node and puppeteer-core are there, or the test fails saying how to get them."""
    if not Path(FIREFOX).exists():
        pytest.fail(f"{FIREFOX} is missing: ./build.sh test installs Debian's firefox-esr package")
    if not shutil.which("node"):
        pytest.fail("node is missing: ./build.sh test installs Debian's nodejs package")
    if not (HERE / "node_modules" / "puppeteer-core").is_dir():
        pytest.fail("puppeteer-core is missing: ./build.sh test installs it, or run "
                    "`cd tests/firefox && PUPPETEER_SKIP_DOWNLOAD=1 npm ci`")


class FirefoxError(AssertionError):
    """A step in Firefox failed; the message is Firefox's (or puppeteer's)."""


class Firefox:
    """One page in a headless firefox-esr; each method is one step, awaited to its end."""

    def __init__(self, process: asyncio.subprocess.Process, version: str) -> None:
        self._process, self.version = process, version
        self._next = 0

    async def _call(self, op: str, **args):
        self._next += 1
        self._process.stdin.write((json.dumps({"id": self._next, "op": op, **args}) + "\n").encode())
        await self._process.stdin.drain()
        async with asyncio.timeout(STEP_S):
            line = await self._process.stdout.readline()
        if not line:
            raise FirefoxError(f"firefox's driver ended during {op}")
        answer = json.loads(line)
        if not answer["ok"]:
            raise FirefoxError(f"{op} {args}: {answer['error']}")
        return answer["value"]

    async def goto(self, url: str) -> str:
        return await self._call("goto", url=url)

    async def fill(self, selector: str, value: str) -> None:
        await self._call("fill", selector=selector, value=value)

    async def click(self, selector: str) -> None:
        await self._call("click", selector=selector)

    async def wait_for_selector(self, selector: str, *, hidden: bool = False, timeout_s: float = 20.0) -> None:
        """Named as the Playwright page's, so a step written for Chromium runs here too (tests/e2e/clerk_steps.py)."""
        await self._call("waitFor", selector=selector, hidden=hidden, timeout=int(timeout_s * 1000))

    async def wait_for_navigation(self) -> str:
        return await self._call("waitForNavigation")

    async def evaluate(self, source: str, arg=None):
        """``source`` is a JavaScript function (may be async); it gets ``arg`` (JSON) and its result
        comes back as JSON."""
        return await self._call("evaluate", source=source, arg=arg)

    async def errors(self) -> list[str]:
        """Script errors and console errors since the last call."""
        return await self._call("errors")


@asynccontextmanager
async def firefox(home: Path) -> AsyncIterator[Firefox]:
    """A fresh headless firefox-esr (its profile and ``HOME`` under ``home``)."""
    require_firefox()
    os.makedirs(home, exist_ok=True)
    process = await asyncio.create_subprocess_exec(
        "node", str(DRIVER), stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "HOME": str(home), "TMPDIR": str(home), "MOZ_CRASHREPORTER_DISABLE": "1"},
        limit=2**24)  # a grabbed picture comes back as one line
    try:
        async with asyncio.timeout(START_S):
            line = await process.stdout.readline()
        if not line:
            raise FirefoxError("firefox-esr did not start (see the test's captured stderr)")
        yield Firefox(process, json.loads(line)["ready"])
    finally:
        if process.returncode is None:
            process.stdin.close()  # the driver closes Firefox and exits
            try:
                async with asyncio.timeout(20):
                    await process.wait()
            except TimeoutError:
                process.kill()
                await process.wait()
