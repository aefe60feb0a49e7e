"""``python -m central bundles add FILE | list | remove ID``: the admin page's bundle list, for scripts.

``add`` checks a bundle exactly as an upload is checked; a refused bundle exits with 1 and says why
(with its update fault, as a kiosk would report it), an unusable setting with 2.
"""
from __future__ import annotations

import argparse
import datetime as dt
import sys

from central.config import Config
from central.storage import Database
from central.updates import control
from central.updates.library import BundleLibrary, BundleRefused, BundleUnavailable

AUDIT_BY = None  # audit entries of the command line have no staff member


def _when(unix_s: float) -> str:
    return dt.datetime.fromtimestamp(unix_s, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


async def run(config: Config, db: Database, args: argparse.Namespace) -> int:
    library = BundleLibrary.from_config(config, db.bundles)
    library.removal_guards.append(control.stored_removal_guard(db))  # not the bundle of a live rollout
    try:
        if args.bundle_command == "add":
            try:
                info = await library.add_file(args.file)
            except BundleRefused as exc:
                print(f"amtsklingel central: {args.file}: refused ({exc.fault}): {exc}", file=sys.stderr)
                return 1
            await db.audit.record(AUDIT_BY, "bundle.add", f"bundle:{info.id}", f"{info.version} ({info.sha256[:12]})")
            print(f"bundle {info.id} added: version {info.version}, {info.size_bytes} bytes, signed by {info.signer} "
                  f"on {_when(info.signed_at)}\nsha256 {info.sha256}\nkiosks fetch it at {info.path}")
        elif args.bundle_command == "list":
            found = await library.list()
            if not found:
                print("no bundles yet; add one with: python -m central bundles add FILE")
            for info in found:
                print(f"{info.id}\t{info.version}\t{info.size_bytes}\t{info.sha256}\tsigned {_when(info.signed_at)} "
                      f"by {info.signer}\tadded {_when(info.uploaded_at)} by {info.uploaded_by}")
        elif args.bundle_command == "remove":
            info = await library.remove(args.bundle_id)
            await db.audit.record(AUDIT_BY, "bundle.remove", f"bundle:{info.id}", info.version)
            print(f"bundle {info.id} (version {info.version}) removed")
    except BundleUnavailable as exc:
        print(f"amtsklingel central: {exc}", file=sys.stderr)
        return 2 if library.problem() else 1
    finally:
        library.close()
    return 0
