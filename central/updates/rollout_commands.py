"""``python -m central rollout start|status|percent|all|pause|resume|stop``: the updates page, for scripts.

The command writes the database; a running central picks the change up within a few seconds
(central/updates/sync.py) and tells its kiosks. Exits with 1 when the action cannot be done now.
"""
from __future__ import annotations

import argparse
import sys
import time
from collections import Counter

from central.config import Config
from central.storage import Database
from central.updates import control
from central.updates.book import KioskUpdate
from central.updates.library import BundleLibrary
from central.updates.rings import Rollout, ring_of

AUDIT_BY = None  # audit entries of the command line have no staff member
BY = "command line"


def add_arguments(sub) -> None:  # noqa: ANN001 - argparse's subparsers
    rollout = sub.add_parser("rollout", help="roll an update bundle out to the kiosks in rings (the updates page)")
    actions = rollout.add_subparsers(dest="rollout_command", required=True)
    start = actions.add_parser("start", help="start a rollout to canary kiosks (stops a live one)")
    start.add_argument("bundle_id", type=int)
    start.add_argument("--canary", required=True, help="kiosk ids, comma-separated, e.g. 3,17")
    start.add_argument("--window", choices=("outside_hours", "now"), default="outside_hours",
                       help="install and restart outside office hours (default) or as soon as the kiosk is idle")
    start.add_argument("--max-kbit-s", type=int, default=None, help="bandwidth cap per kiosk (64 or more)")
    actions.add_parser("status", help="the live rollout and its kiosks' states")
    percent = actions.add_parser("percent", help="open the percentage ring to this share of the fleet")
    percent.add_argument("percent", type=int)
    for name, text in (("all", "open it to every kiosk"), ("pause", "pause it (kiosks leave the bundle)"),
                       ("resume", "go on after a pause"), ("stop", "end it (kiosks leave the bundle)")):
        actions.add_parser(name, help=text)


def _status_lines(rollout: Rollout, statuses: list[KioskUpdate]) -> list[str]:
    lines = [f"rollout {rollout.id}: bundle {rollout.bundle_id} version {rollout.version}, {rollout.state}, "
             f"ring {rollout.ring}{f' {rollout.percent} %' if rollout.ring == 'percent' else ''}, "
             f"window {rollout.window}, cap {rollout.max_kbit_s or '-'} kbit/s"]
    if rollout.pause is not None:
        p = rollout.pause
        lines.append(f"paused by kiosk {p.kiosk_id}: {p.state} {p.fault or ''} {p.check or ''}".rstrip())
    counts: Counter[tuple[str, str]] = Counter()
    for s in statuses:
        if s.bundle_id == rollout.bundle_id:
            counts[(ring_of(rollout, s.kiosk_id), s.state)] += 1
    lines += [f"{ring}\t{state}\t{n}" for (ring, state), n in sorted(counts.items())]
    return lines


async def run(config: Config, db: Database, args: argparse.Namespace) -> int:
    command, now = args.rollout_command, time.time()
    try:
        if command == "start":
            library = BundleLibrary.from_config(config, db.bundles)
            try:
                bundle = await library.get(args.bundle_id)
            finally:
                library.close()
            if bundle is None:
                print(f"amtsklingel central: there is no bundle {args.bundle_id}; see: python -m central bundles "
                      "list", file=sys.stderr)
                return 1
            canary = {int(part) for part in args.canary.split(",") if part.strip().isdigit()}
            if args.max_kbit_s is not None and not 64 <= args.max_kbit_s <= 10_000_000:
                print("amtsklingel central: --max-kbit-s is from 64 to 10000000", file=sys.stderr)
                return 1
            rollout = await db.updates.start(control.new_rollout(bundle, canary, args.window, args.max_kbit_s, BY,
                                                                 now), stopped_at=now)
            await db.audit.record(AUDIT_BY, "update.start", f"bundle:{rollout.bundle_id}",
                                  f"rollout {rollout.id}, version {rollout.version}; canary kiosks "
                                  f"{','.join(map(str, sorted(canary)))}; window {args.window}")
            print(f"rollout {rollout.id} of version {rollout.version} started; a running central offers it within "
                  "seconds")
            return 0
        rollout = await db.updates.live_rollout()
        if rollout is None:
            if command == "status":
                print("no rollout is running")
                return 0
            print("amtsklingel central: no rollout is running; start one first", file=sys.stderr)
            return 1
        if command == "status":
            print("\n".join(_status_lines(rollout, await db.updates.statuses())))
            return 0
        if command in ("percent", "all"):
            changed = control.widened(rollout, args.percent if command == "percent" else None)
        elif command == "stop":
            changed = control.stopped(rollout, now)
        else:
            changed = control.paused(rollout) if command == "pause" else control.resumed(rollout)
        await db.updates.save(changed)
        detail = f"{args.percent} %" if command == "percent" else (
            control.pause_detail(rollout.pause) if command == "resume" else "")
        await db.audit.record(AUDIT_BY, f"update.{command}", f"bundle:{rollout.bundle_id}",
                              f"rollout {rollout.id}, version {rollout.version}; {detail}".rstrip("; "))
        print(f"rollout {rollout.id}: {command} done; a running central tells its kiosks within seconds")
    except control.RolloutError as exc:
        print(f"amtsklingel central: {exc}", file=sys.stderr)
        return 1
    return 0
