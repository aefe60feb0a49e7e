"""A call between a kiosk and a clerk at two sites behind NAT with no direct path: it connects through
a real coturn with central's time-limited credentials, and the picture moves both ways.

The kiosk is the real appliance (fake hardware, aiortc) on a thread inside the kiosk site's namespace;
the clerk is Debian's Chromium started inside the clerk site's namespace (``ip netns exec``); central
and coturn sit on the "wan" between them (tests/nat_sites.py). The kiosk has been connected longer
than its credentials live: the call it starts gets new ones, and coturn refuses the old ones. A kiosk
set to relay-only in central sends nothing from its site but to central and the TURN server.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

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
from tests.e2e.clerk_steps import on_duty
from tests.e2e.test_clerk_call import INBOUND_STATS_JS
from tests.nat_sites import WAN, NetnsLoop, Site, nat_sites, require_root_and_tools, sh
from tests.polling import until
from tests.tls import make_ca
from tests.turn_server import Turn, coturn

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


@dataclass
class Sites:
    """Everything one test at the two sites uses."""

    central: object  # tests.central.conftest.Central
    ice: RecordingIce
    unit: object     # the appliance (appliance.service.main.Appliance)
    kiosk_loop: NetnsLoop
    kiosk: str       # its name in central's TURN user names
    kiosk_site: Site
    clerk_site: Site
    turn: Turn
    tmp: Path


@contextlib.asynccontextmanager
async def two_sites(tmp_path: Path, *, relay_only: bool = False) -> AsyncIterator[Sites]:
    """coturn and central on the wan, the appliance connected from the kiosk site (relay-only if asked,
    through its settings in central)."""
    require_isolated_network()  # before the test adds its own interfaces
    require_root_and_tools()
    city_ca = make_ca("Stadt Musterdorf CA")
    tls = city_ca.server_context(tmp_path, hosts=(WAN,))
    with nat_sites() as (kiosk_site, clerk_site), coturn(tmp_path / "turn", WAN) as turn:
        config = Config(database_url=f"sqlite:///{tmp_path}/central.db", secure_cookies=False,
                        turn_urls=(turn.url,), turn_secret=TurnSecret(turn.secret), turn_credential_s=LIFETIME_S)
        async with running_central(config, tls, host=WAN) as central:
            ice = central.hub.ice = RecordingIce(central.hub.ice.static, central.hub.ice.turn)
            kiosk_id = int(central.credentials["kiosk_token"].split(".")[0])
            if relay_only:
                await central.db.kiosk_settings.update(kiosk_id, relay_only=True)
            kiosk_loop = NetnsLoop(kiosk_site.netns)
            unit = None
            try:
                unit = await kiosk_loop.run(start(ApplianceConfig(
                    central_url=central.url, token=central.credentials["kiosk_token"], hardware={"backend": "fake"},
                    kiosk_port=0, ca_file=city_ca.write(tmp_path / "ca.pem"), data_dir=tmp_path / "kiosk"),
                    timeouts=Timeouts(ended_s=1.0)))
                await until(lambda: ice.to(f"kiosk-{kiosk_id}"), 20, what="the kiosk's welcome from central")
                yield Sites(central, ice, unit, kiosk_loop, f"kiosk-{kiosk_id}", kiosk_site, clerk_site, turn,
                            tmp_path)
            finally:
                if unit is not None:
                    await kiosk_loop.run(unit.close())
                kiosk_loop.close()


@contextlib.asynccontextmanager
async def clerk_console(sites: Sites) -> AsyncIterator:
    """The clerk's Chromium at the clerk site, logged in to central's console."""
    # Central's certificate is from the test's own CA. No loopback candidates: a browser at a site offers none.
    flags = [f for f in WEBRTC_FLAGS if f != "--allow-loopback-in-peer-connection"] + ["--ignore-certificate-errors"]
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=chromium_in(sites.clerk_site.netns, sites.tmp),
                                           args=flags, headless=True, ignore_default_args=["--mute-audio"])
        try:
            context = await browser.new_context(permissions=["camera", "microphone", "notifications"],
                                                ignore_https_errors=True)
            clerk = await context.new_page()
            await on_duty(clerk, sites.central)
            yield clerk
        finally:
            await browser.close()


async def citizen_is_picked_up(sites: Sites, clerk) -> dict:  # noqa: ANN001 - a Playwright page
    """Button presses at the kiosk, the clerk picks up, the call connects; the clerk's selected pair."""
    unit = sites.unit
    button = unit.hardware.button
    # Press (choose), long press (the highlighted department), press (consent).
    for action, screen in ((button.press, Screen.CHOOSING), (button.long_press, Screen.CONSENT),
                           (button.press, Screen.WAITING)):
        await sites.kiosk_loop.run(action())
        await until(lambda s=screen: unit.controller.view.screen is s, 15, what=f"the kiosk's {screen}")
    await clerk.locator("[data-testid=visit-row] [data-testid=pickup-button]").click()
    await until(lambda: unit.controller.view.screen is Screen.IN_CALL, 20, what="the kiosk in the call")
    pair = await poll_page(clerk, SELECTED_PAIR_JS, lambda p: p is not None, 30)
    assert "relay" in (pair["local"], pair["remote"]), pair
    assert pair["remoteAddress"] not in (sites.kiosk_site.address, sites.kiosk_site.public), pair
    return pair


async def pictures_move_both_ways(sites: Sites, clerk) -> None:  # noqa: ANN001 - a Playwright page
    """The kiosk's picture moves in the clerk's browser, the clerk's reaches the kiosk."""
    first = await poll_page(clerk, INBOUND_STATS_JS, lambda s: s and s["video"]
                            and s["video"]["framesDecoded"] > 10, 30)
    await poll_page(clerk, INBOUND_STATS_JS,
                    lambda s: s["video"]["framesDecoded"] > first["video"]["framesDecoded"] + 20, 30)
    stats = sites.unit.clerk_video.stats
    seen = stats["frames_in"]
    await until(lambda: stats["frames_in"] > seen + 20, 30, what="the clerk's picture arriving at the kiosk")


async def test_kiosk_and_clerk_behind_nat_talk_through_coturn_with_fresh_credentials(tmp_path):
    async with two_sites(tmp_path) as sites, clerk_console(sites) as clerk:
        welcome = sites.ice.to(sites.kiosk)[0]
        # The kiosk's first credentials run out while it stands idle; coturn then refuses them.
        await asyncio.sleep(max(0.0, expiry(welcome) - time.time()) + 1.5)
        assert await relay_candidates(welcome) == 0, coturn_said(sites.turn)

        await citizen_is_picked_up(sites, clerk)
        # call.start carried new credentials, valid then, and the call connected with them.
        fresh = sites.ice.to(sites.kiosk)[1]
        assert expiry(fresh) > expiry(welcome) and fresh[-1].credential != welcome[-1].credential
        await pictures_move_both_ways(sites, clerk)


async def test_a_relay_only_kiosk_sends_nothing_from_its_site_but_to_central_and_coturn(tmp_path):
    async with two_sites(tmp_path, relay_only=True) as sites, clerk_console(sites) as clerk:
        remote = sites.unit.remote
        await until(lambda: remote.current is not None and remote.current.relay_only, 15,
                    what="the kiosk applying its relay-only setting from central")
        count_kiosk_traffic(sites)
        await citizen_is_picked_up(sites, clerk)
        await pictures_move_both_ways(sites, clerk)

        offer = await clerk.evaluate("window.amtsklingel.pc.remoteDescription.sdp")
        candidates = [line for line in offer.splitlines() if line.startswith("a=candidate:")]
        assert candidates and all(" typ relay" in line for line in candidates), candidates
        assert sites.kiosk_site.address not in offer and sites.kiosk_site.public not in offer
        counted = kiosk_traffic(sites)
        assert counted["to_turn"] > 0 and counted["elsewhere"] == 0, counted


def count_kiosk_traffic(sites: Sites) -> None:
    """Counters on the kiosk site's router: the kiosk's packets to coturn, and to anything but coturn
    and central (media straight to the other side, or to its relay, would land there)."""
    kiosk = sites.kiosk_site.address
    central_port = int(sites.central.url.rsplit(":", 1)[1])
    sh("ip", "netns", "exec", sites.kiosk_site.router, "nft", "-f", "-", input=f"""table ip watch {{
 counter to_turn {{ }}
 counter elsewhere {{ }}
 chain forward {{
  type filter hook forward priority filter; policy accept;
  ip saddr {kiosk} ip daddr {WAN} udp dport {sites.turn.port} counter name to_turn accept
  ip saddr {kiosk} ip daddr {WAN} tcp dport {central_port} accept
  ip saddr {kiosk} counter name elsewhere
 }}
}}
""")


def kiosk_traffic(sites: Sites) -> dict[str, int]:
    listed = subprocess.run(["ip", "netns", "exec", sites.kiosk_site.router, "nft", "-j", "list", "counters"],
                            capture_output=True, text=True, check=True).stdout
    return {item["counter"]["name"]: item["counter"]["packets"]
            for item in json.loads(listed)["nftables"] if "counter" in item}


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

