"""A real headless Chromium (Debian's) driven by Playwright, in a loopback-only namespace."""
from __future__ import annotations

import pytest_asyncio

from tests.browser import WEBRTC_FLAGS, launch, require_isolated_network
from tests.central.conftest import central  # noqa: F401  (the running central, shared fixture)


@pytest_asyncio.fixture
async def browser(tmp_path):
    require_isolated_network()
    async with launch(WEBRTC_FLAGS, ignore_default_args=["--mute-audio"]) as browser:
        yield browser
