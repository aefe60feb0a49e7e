"""A call between a kiosk and a clerk at two sites behind NAT with no direct path: it connects through
a real coturn with central's time-limited credentials, and the picture moves both ways.

The kiosk is the real appliance (fake hardware, aiortc) on a thread inside the kiosk site's namespace;
the clerk is Debian's Chromium started inside the clerk site's namespace (``ip netns exec``); central
and coturn sit on the "wan" between them (tests/nat_sites.py). The kiosk has been connected longer
than its credentials live: the call it starts gets new ones, and coturn refuses the old ones.
"""
from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from playwright.async_api import async_playwright

from appliance.call.peer import CallPeer
from appliance.config import ApplianceConfig
from appliance.controller.machine import Timeouts
from appliance.controller.view import Screen
from appliance.service.main import start
from central.config import Config
from central.live.ice import IceServers, TurnSecret
from protocol import messages as m
from tests.browser import CHROMIUM, WEBRTC_FLAGS, require_isolated_network
from tests.central.conftest import running_central
from tests.e2e.test_clerk_call import INBOUND_STATS_JS, login
from tests.nat_sites import WAN, NetnsLoop, nat_sites, require_root_and_tools
from tests.polling import until
from tests.tls import make_ca
from tests.turn_server import coturn

LIFETIME_S = 12  # short, so the kiosk's first credentials run out during the test

# The pair of candidates the clerk's browser sends media over, with their types and addresses.
SELECTED_PAIR_JS = """async () => {
  const pc = window.amtsklingel && window.amtsklingel.pc;
  if (!pc) return null;
  const stats = await pc.getStats();
  let pair = null;
  stats.forEach(r => { if (r.type === 'transport' && r.selectedCandidatePairId) pair = stats.get(r.selectedCandidatePairId); });
  if (!pair || pair.state !== 'succeeded') return null;
  const local = stats.get(pair.localCandidateId), remote = stats.get(pair.remoteCandidateId);
  return {local: local.candidateType, localAddress: local.address, remote: remote.candidateType,
          remoteAddress: remote.address};
}"""


@dataclass
class RecordingIce(IceServers):
    """Central's ICE servers, remembering what each peer was handed (the test checks them against coturn)."""

    handed: list[tuple[str, list[m.IceServer]]] = field(default_factory=list)

    def for_peer(self, who: str) -> list[m.IceServer]:
        servers = super().for_peer(who)
        self.handed.append((who, servers))
        return servers

    def to(self, who: str) -> list[list[m.IceServer]]:
        return [servers for name, servers in self.handed if name == who]


def expiry(servers: list[m.IceServer]) -> int:
    return int(servers[-1].username.split(":", 1)[0])


async def relay_candidates(ice_servers: list[m.IceServer]) -> int:
    """How many relay candidates coturn grants for these credentials (an allocation, right now)."""
    probe = CallPeer(ice_servers, [], relay_only=True, native_relay_policy=False)
    try:
        return (await probe.offer()).count("typ relay")
    finally:
        await probe.close()


def chromium_in(netns: str, directory) -> str:  # noqa: ANN001 - a pathlib.Path
    """An executable that starts Debian's Chromium inside ``netns``, for Playwright's executable_path."""
    wrapper = directory / "chromium-in-netns"
    wrapper.write_text(f"#!/bin/sh\nexec ip netns exec {netns} {CHROMIUM} \"$@\"\n")
    wrapper.chmod(0o755)
    return str(wrapper)


async def test_kiosk_and_clerk_behind_nat_talk_through_coturn_with_fresh_credentials(tmp_path):
    require_isolated_network()  # before the test adds its own interfaces
    require_root_and_tools()
    city_ca = make_ca("Stadt Musterdorf CA")
    tls = city_ca.server_context(tmp_path, hosts=(WAN,))
    with nat_sites() as (kiosk_site, clerk_site), coturn(tmp_path / "turn", WAN) as turn:
        config = Config(database_url=f"sqlite:///{tmp_path}/central.db", secure_cookies=False,
                        turn_urls=(turn.url,), turn_secret=TurnSecret(turn.secret), turn_credential_s=LIFETIME_S)
        async with running_central(config, tls, host=WAN) as central:
            ice = central.hub.ice = RecordingIce(central.hub.ice.static, central.hub.ice.turn)
            kiosk_loop = NetnsLoop(kiosk_site.netns)
            unit = None
            try:
                unit = await kiosk_loop.run(start(ApplianceConfig(
                    central_url=central.url, token=central.credentials["kiosk_token"], hardware={"backend": "fake"},
                    kiosk_port=0, ca_file=city_ca.write(tmp_path / "ca.pem"), data_dir=tmp_path / "kiosk"),
                    timeouts=Timeouts(ended_s=1.0)))
                kiosk = f"kiosk-{central.credentials['kiosk_token'].split('.')[0]}"
                await until(lambda: ice.to(kiosk), 20, what="the kiosk's welcome from central")
                await clerk_call(central, unit, kiosk_loop, ice, kiosk, clerk_site, kiosk_site, turn, tmp_path)
            finally:
                if unit is not None:
                    await kiosk_loop.run(unit.close())
                kiosk_loop.close()


async def clerk_call(central, unit, kiosk_loop, ice, kiosk, clerk_site, kiosk_site, turn, tmp_path) -> None:  # noqa: ANN001 - the test's own objects, passed on
    welcome = ice.to(kiosk)[0]
    # Central's certificate is from the test's own CA. No loopback candidates: a browser at a site offers none.
    flags = [f for f in WEBRTC_FLAGS if f != "--allow-loopback-in-peer-connection"] + ["--ignore-certificate-errors"]
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=chromium_in(clerk_site.netns, tmp_path), args=flags,
                                           headless=True, ignore_default_args=["--mute-audio"])
        try:
            context = await browser.new_context(permissions=["camera", "microphone", "notifications"],
                                                ignore_https_errors=True)
            clerk = await context.new_page()
            await login(clerk, central)
            await clerk.locator("[data-testid=connection-state][data-state=connected]").wait_for()

            # The kiosk's first credentials run out while it stands idle; coturn then refuses them.
            await asyncio.sleep(max(0.0, expiry(welcome) - time.time()) + 1.5)
            assert await relay_candidates(welcome) == 0, coturn_said(turn)

            # A citizen comes: press (choose), long press (the highlighted department), press (consent).
            button = unit.hardware.button
            for action, screen in ((button.press, Screen.CHOOSING), (button.long_press, Screen.CONSENT),
                                   (button.press, Screen.WAITING)):
                await kiosk_loop.run(action())
                await until(lambda s=screen: unit.controller.view.screen is s, 15, what=f"the kiosk's {screen}")
            await clerk.locator("[data-testid=visit-row] [data-testid=pickup-button]").click()

            # call.start carried new credentials, valid now; the call connects through the relay only.
            fresh = await until(lambda: ice.to(kiosk)[1:], 10, what="call.start's credentials")
            assert expiry(fresh[-1]) > time.time() and fresh[-1][-1].credential != welcome[-1].credential
            await until(lambda: unit.controller.view.screen is Screen.IN_CALL, 20, what="the kiosk in the call")
            pair = await poll_page(clerk, SELECTED_PAIR_JS, lambda p: p is not None, 30)
            assert "relay" in (pair["local"], pair["remote"]), pair
            assert kiosk_site.address != pair["remoteAddress"] and kiosk_site.public != pair["remoteAddress"]

            # The kiosk's picture moves in the clerk's browser, the clerk's reaches the kiosk.
            first = await poll_page(clerk, INBOUND_STATS_JS, lambda s: s and s["video"]
                                    and s["video"]["framesDecoded"] > 10, 30)
            await poll_page(clerk, INBOUND_STATS_JS,
                            lambda s: s["video"]["framesDecoded"] > first["video"]["framesDecoded"] + 20, 30)
            seen = unit.clerk_video.stats["frames_in"]
            await until(lambda: unit.clerk_video.stats["frames_in"] > seen + 20, 30,
                        what="the clerk's picture arriving at the kiosk")
            assert "ALLOCATE processed, success" in turn.log_text()
        finally:
            await browser.close()


async def poll_page(page, script: str, ok, seconds: float):  # noqa: ANN001 - a Playwright page, a predicate
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        result = await page.evaluate(script)
        if ok(result):
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"the clerk's browser did not get there within {seconds} s; last: {result}")
        await asyncio.sleep(0.2)


def coturn_said(turn) -> str:  # noqa: ANN001 - tests.turn_server.Turn
    return "coturn granted a relay for expired credentials:\n" + "\n".join(turn.log_text().splitlines()[-20:])

