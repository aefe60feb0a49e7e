"""The self-test's real probes: network (a route towards central) and clock (NTP synchronised)."""
from __future__ import annotations

import os
import stat

from appliance.selftest.probes import FakeProbe, RouteProbe, SystemClock


async def test_a_route_to_central_on_this_machine_is_found():
    assert await RouteProbe("http://127.0.0.1:8080")()
    assert await RouteProbe("https://localhost")()


async def test_no_route_or_no_name_is_network_down():
    # The tests run in a namespace with loopback only: a documentation address (RFC 5737) has no route.
    assert not await RouteProbe("https://192.0.2.10")()
    assert not await RouteProbe("https://central.example.invalid")()  # RFC 6761: never resolves


async def test_clock_synchronised_by_timesyncd_flag(tmp_path):
    flag = tmp_path / "synchronized"
    clock = SystemClock(flag=flag, timedatectl=None)
    assert not await clock()
    flag.touch()
    assert await clock()


def fake_timedatectl(tmp_path, answer: str) -> str:
    script = tmp_path / "timedatectl"
    script.write_text(f'#!/bin/sh\n[ "$1 $2 $3" = "show --property=NTPSynchronized --value" ] && echo {answer}\n')
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return os.fspath(script)


async def test_clock_asks_timedatectl_without_the_flag(tmp_path):
    assert await SystemClock(flag=tmp_path / "absent", timedatectl=fake_timedatectl(tmp_path, "yes"))()
    assert not await SystemClock(flag=tmp_path / "absent", timedatectl=fake_timedatectl(tmp_path, "no"))()
    assert not await SystemClock(flag=tmp_path / "absent", timedatectl=os.fspath(tmp_path / "missing"))()


async def test_fake_probe_passes_until_told_to_fail():
    probe = FakeProbe()
    assert await probe()
    probe.fail()
    assert not await probe()
    probe.repair()
    assert await probe()
