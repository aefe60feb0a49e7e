"""Slow kiosk: a call on a kiosk whose CPU cannot keep up with the clerk's packets, with the appliance's
reading of the call's sockets (appliance/call/catch_up.py) and with asyncio's own (one datagram per turn).

What is measured
----------------
The kiosk (bench/_slow_kiosk.py: the appliance's CallPeer, the boot test's 320x180 camera at 15 fps, a
tone, the clerk's voice to a speaker paced like a sound card, the clerk's picture to the page's feed) runs
in a process of its own; once its call connected it moves into a cgroup that gives it ``--slow-kiosk-cpu``
percent of one core (CFS quota per 50 ms), as an emulated boot-test guest or a Pi 4 under load has
too little. The clerk (tests/appliance/clerk_process.py, real aiortc, 320x240 at 15 fps and a tone) is
not limited. After ``--slow-kiosk-s`` seconds, per reading:

* ``connected``: 1 if the call was still connected (the kiosk's RFC 7675 consent held);
* ``consent_slowest_s``: the slowest answer to the kiosk's ICE consent checks, and the share answered;
* ``kernel_drops``: datagrams the kernel dropped because the kiosk's socket was full;
* ``longest_wait_s``: how long the oldest media packet read had waited in the socket (catch_up only);
* ``media_dropped_stale``: media packets dropped as older than 0.5 s (catch_up only);
* ``voice_played_pct``: seconds of the clerk's voice played per second of call;
* ``voice_backlog_ms_max``: the most of the clerk's voice waiting in the kiosk to be decoded or played
  (sampled once a second): how far behind the speaker is;
* ``cpu_s_per_min``: the kiosk's CPU (at most the limit).

``--quick``: 20 s per reading.

Needs root and a writable cgroup file system with the cpu controller (v1 ``/sys/fs/cgroup/cpu`` or v2).
"""
from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

from bench._common import BenchError, emit, note

NAME = "slow_kiosk"
READINGS = ("asyncio", "catch_up")
PERIOD_US = 50_000
REPO = Path(__file__).resolve().parents[1]


def add_arguments(parser) -> None:
    parser.add_argument("--slow-kiosk-cpu", type=float, default=3.0,
                        help="slow_kiosk: the kiosk's share of one core in percent (default 3)")
    parser.add_argument("--slow-kiosk-s", type=float, default=60.0,
                        help="slow_kiosk: seconds of call measured per reading (default 60)")


def make_cgroup(name: str, percent: float) -> Path:
    """A cgroup limited to ``percent`` of one core; v1's cpu controller or v2's cpu.max."""
    quota = max(1000, int(PERIOD_US * percent / 100))
    v1 = Path("/sys/fs/cgroup/cpu")
    if (v1 / "cpu.cfs_quota_us").exists():
        group = v1 / name
        group.mkdir(exist_ok=True)
        (group / "cpu.cfs_period_us").write_text(str(PERIOD_US))
        (group / "cpu.cfs_quota_us").write_text(str(quota))
        return group
    v2 = Path("/sys/fs/cgroup")
    if "cpu" in (v2 / "cgroup.controllers").read_text().split() if (v2 / "cgroup.controllers").exists() else False:
        group = v2 / name
        group.mkdir(exist_ok=True)
        (group / "cpu.max").write_text(f"{quota} {PERIOD_US}")
        return group
    raise BenchError("no cgroup cpu controller to limit the kiosk with (needs root and /sys/fs/cgroup/cpu "
                     "or cgroup v2 with the cpu controller)")


async def one(reading: str, group: Path, seconds: float) -> dict:
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench._slow_kiosk", reading, str(group), str(seconds), cwd=REPO,
        stdout=asyncio.subprocess.PIPE)
    try:
        async with asyncio.timeout(seconds + 120):
            out, _ = await child.communicate()
    except TimeoutError:
        child.kill()
        await child.wait()
        raise BenchError(f"the {reading} kiosk did not finish within {seconds + 120:.0f} s") from None
    if child.returncode != 0 or not out.strip():
        raise BenchError(f"the {reading} kiosk failed (exit {child.returncode})")
    return json.loads(out.decode().strip().splitlines()[-1])


def run(args) -> int:
    if os.geteuid() != 0:
        raise BenchError("slow_kiosk needs root (a cgroup limits the kiosk's CPU)")
    seconds = min(args.slow_kiosk_s, 20.0) if args.quick else args.slow_kiosk_s
    group = make_cgroup(f"amtsklingel-slow-kiosk-{os.getpid()}", args.slow_kiosk_cpu)
    try:
        note(f"slow_kiosk: the kiosk gets {args.slow_kiosk_cpu:g} % of one core, {seconds:g} s per reading")
        for reading in READINGS:
            result = asyncio.run(one(reading, group, seconds))
            note(f"slow_kiosk {reading}: {result}")
            prefix = f"{NAME}.{reading}"
            answered = 100 * result["consent_answered"] / max(1, result["consent_checks"])
            emit(f"{prefix}.connected", int(result["connected_to_the_end"]), "bool")
            emit(f"{prefix}.consent_slowest_s", result["consent_slowest_s"], "s")
            emit(f"{prefix}.consent_answered_pct", round(answered, 1), "%")
            emit(f"{prefix}.kernel_drops", result["kernel_drops"], "datagrams")
            emit(f"{prefix}.voice_played_pct", result["clerk_voice_played_pct"], "%")
            emit(f"{prefix}.voice_backlog_ms_max", result["voice_backlog_ms_max"], "ms")
            emit(f"{prefix}.cpu_s_per_min", result["cpu_s_per_min"], "s")
            if reading == "catch_up":
                emit(f"{prefix}.longest_wait_s", result["longest_wait_s"], "s")
                emit(f"{prefix}.media_dropped_stale", result["media_dropped_stale"], "packets")
    finally:
        try:
            group.rmdir()  # empty once the kiosk processes ended
        except OSError as exc:
            note(f"slow_kiosk: could not remove {group}: {exc}")
    return 0
