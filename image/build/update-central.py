"""The update test's hands and eyes on central (image/build/update-test.sh), run with the repository's
Python inside the test's network namespace:

    update-central.py --config central.toml --central URL --credentials demo.json --metrics-token T COMMAND
      add FILE               central's own check and store (``python -m central bundles add``); prints the id
      add --unchecked FILE   into central's bundle store WITHOUT central's check (a corrupt or foreign
                             bundle: the unit's refusal is what the test is about); prints the id
      rollout --bundle ID    a rollout of the bundle to every kiosk, window "now", as city IT starts one
                             on the admin page /admin/updates
      show [--bundle ID] [--field NAME]   the kiosk's state as central shows it (JSON), or one field
      wait [--version V] [--state S,S] [--bundle ID] [--min-progress P] [--connected] [--timeout S]
                             until central shows all of that (--min-progress: while downloading);
                             prints the state; exit 1 on timeout

Central's view comes from its /metrics (the kiosk's version and connection) and its fleet page (the
update state: offered, downloading %, installed, rebooting, running, rolled back or failed, with
fault and check), the way city IT sees them.
"""
from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from central_admin import Admin, AdminError  # noqa: E402  (image/build/central_admin.py)

POLL_S = 2.0


def _metrics(args: argparse.Namespace) -> str:
    return Admin(args.central).get_text("/metrics", bearer=args.metrics_token)


def _samples(text: str, name: str) -> list[dict[str, str]]:
    found = []
    for line in text.splitlines():
        if line.startswith(name + "{"):
            labels = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', line.split("{", 1)[1].rsplit("}", 1)[0]))
            labels["value"] = line.rsplit(" ", 1)[1]
            found.append(labels)
    return found


def state(args: argparse.Namespace, admin: Admin | None) -> dict:
    """The test's kiosk as central shows it: its number, version, slot and connection (/metrics), its
    report on ``args.bundle`` (or its latest report: central's memory of the kiosks' update reports)
    and, for people, the fleet page's update line and the rollout's pause reason."""
    text = _metrics(args)
    ours = [s for s in _samples(text, "amtsklingel_kiosk_up") if s.get("location") == args.location]
    shown: dict = {"kiosk": ours[0]["kiosk"] if ours else None, "connected": bool(ours) and ours[0]["value"] == "1",
                   "version": None, "slot": None}
    for build in _samples(text, "amtsklingel_kiosk_build_info"):
        if build.get("kiosk") == shown["kiosk"]:
            shown.update(version=build.get("version"), slot=build.get("slot"))
    if shown["kiosk"] is not None:
        shown["update"] = asyncio.run(_report(args.config, int(shown["kiosk"]), args.bundle))
        if admin is not None:
            shown["fleet_page"] = admin.fleet_update(shown["kiosk"])
            if (shown["update"] or {}).get("state") in ("rolled_back", "failed"):
                shown["pause_reason"] = admin.pause_reason()
    return shown


async def _report(config_file: Path, kiosk_id: int, bundle_id: str | None) -> dict | None:
    """The kiosk's update report as central keeps it (written within a second of its arrival)."""
    from central.config import Config
    from central.storage import Database
    db = await Database.open(Config.from_file(config_file).database_url)
    try:
        reports = [r for r in await db.updates.statuses() if r.kiosk_id == kiosk_id
                   and (bundle_id is None or r.bundle_id == int(bundle_id))]
    finally:
        await db.close()
    if not reports:
        return None
    report = max(reports, key=lambda r: r.updated_at)
    return {"bundle_id": report.bundle_id, "version": report.version, "state": report.state,
            "progress_pct": report.progress_pct, "downloaded_bytes": report.downloaded_bytes, "fault": report.fault,
            "check": report.check, "running_version": report.running_version}


def _matches(shown: dict, args: argparse.Namespace) -> bool:
    if args.version and shown.get("version") != args.version:
        return False
    if args.connected and not shown.get("connected"):
        return False
    update = shown.get("update") or {}
    if args.state and update.get("state") not in args.state.split(","):
        return False
    if (args.min_progress is not None and update.get("state") == "downloading"
            and (update.get("progress_pct") or 0) < args.min_progress):
        return False
    return True


def _logged_in(args: argparse.Namespace) -> Admin:
    credentials = json.loads(args.credentials.read_text())
    admin = Admin(args.central)
    admin.log_in(credentials["admin_user"], credentials["admin_password"])
    return admin


def wait(args: argparse.Namespace) -> int:
    deadline = time.monotonic() + args.timeout
    admin, shown = None, {}
    while True:
        try:
            admin = admin or _logged_in(args)
            shown = state(args, admin)
            if _matches(shown, args):
                print(json.dumps(shown, sort_keys=True, ensure_ascii=False))
                return 0
        except (AdminError, OSError) as exc:
            admin, shown = None, {"error": str(exc), **shown}
        if time.monotonic() > deadline:
            print(json.dumps({"timeout_s": args.timeout, **shown}, sort_keys=True, ensure_ascii=False))
            return 1
        time.sleep(POLL_S)


def add(args: argparse.Namespace) -> int:
    if not args.unchecked:
        done = subprocess.run([sys.executable, "-m", "central", "--config", str(args.config), "bundles", "add",
                               str(args.file)], capture_output=True, text=True)
        found = re.search(r"^bundle (\d+) added", done.stdout, re.M)
        if done.returncode != 0 or not found:
            print(done.stdout + done.stderr, file=sys.stderr)
            return 1
        print(found.group(1))
        return 0
    # Straight into the store, as if central had checked it: nothing else would let it through.
    from central.config import Config
    config = Config.from_file(args.config)
    info = json.loads(subprocess.run(["rauc", "info", "--no-verify", "--output-format=json", str(args.file)],
                                     capture_output=True, text=True, check=True).stdout)
    sha256 = hashlib.sha256(args.file.read_bytes()).hexdigest()
    shutil.copyfile(args.file, Path(config.bundle_directory) / f"{sha256}.raucb")
    row = dict(version=info["version"], compatible=info["compatible"], size_bytes=args.file.stat().st_size,
               sha256=sha256, signer="unchecked: put in by the update test", signed_at=time.time(),
               uploaded_at=time.time(), uploaded_by="update-test")
    print(asyncio.run(_add_row(config.database_url, row)))
    return 0


async def _add_row(database_url: str, row: dict) -> int:
    from central.storage import Database
    db = await Database.open(database_url)
    try:
        return await db.bundles.add(**row)
    finally:
        await db.close()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--central", required=True)
    parser.add_argument("--credentials", type=Path, required=True)
    parser.add_argument("--metrics-token", required=True)
    parser.add_argument("--location", default="Update test, QEMU", help="the test's kiosk, as it was enrolled")
    sub = parser.add_subparsers(dest="command", required=True)
    p_add = sub.add_parser("add")
    p_add.add_argument("--unchecked", action="store_true")
    p_add.add_argument("file", type=Path)
    p_rollout = sub.add_parser("rollout")
    p_rollout.add_argument("--bundle", required=True)
    p_rollout.add_argument("--version", help=argparse.SUPPRESS)
    p_show = sub.add_parser("show")
    p_show.add_argument("--bundle")
    p_show.add_argument("--field")
    p_wait = sub.add_parser("wait")
    p_wait.add_argument("--version")
    p_wait.add_argument("--state")
    p_wait.add_argument("--bundle")
    p_wait.add_argument("--min-progress", type=int)
    p_wait.add_argument("--connected", action="store_true")
    p_wait.add_argument("--timeout", type=float, default=1500)
    args = parser.parse_args(argv)
    if args.command == "add":
        return add(args)
    if args.command == "wait":
        return wait(args)
    admin = _logged_in(args)
    if args.command == "rollout":
        kiosk = state(args, None)["kiosk"]
        if kiosk is None:
            print(f"no kiosk {args.location!r} on central's /metrics", file=sys.stderr)
            return 1
        print(admin.start_rollout(args.bundle, [kiosk]) + f" for kiosk {kiosk}")
        return 0
    shown = state(args, admin)
    if args.field:
        print(json.dumps((shown.get("update") or {}).get(args.field)))
    else:
        print(json.dumps(shown, sort_keys=True, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
