"""Remote updates in QEMU: bundle size, bytes downloaded, install and rollback times (from update-test).

The figures come from the last ``sudo ./build.sh update-test`` (image/build/update-test.sh), which
boots the image under QEMU, installs version N+1 (one Debian package different from N), lets N+2
fail its health check and fall back, and writes its JSON lines to ``update-test/results.json`` in
``$AMTSKLINGEL_OUT`` (default ``out/``). This benchmark prints them again, with that run's date and
checks; it does not run QEMU itself (40-60 minutes, as root). The target: ``update_download_mb`` at
most 15 % of ``update_bundle_mb`` (RAUC's adaptive mode fetches only the blocks the unit lacks).

    update_bundle_mb     the N+1 bundle file
    update_download_mb   what the unit fetched from central to install it
    update_install_s     from central's offer to the unit running N+1, committed (download, install,
                         reboot, health check)
    update_rollback_s    from N+2's trial boot to the unit running N+1 again (failed check, reboot)
"""
from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

from bench._common import emit, note

NAME = "update"
REPO = Path(__file__).resolve().parents[1]
TARGET_DOWNLOAD_SHARE = 0.15


def results_dir() -> Path:
    return Path(os.environ.get("AMTSKLINGEL_OUT", REPO / "out")) / "update-test"


def run(args) -> int:  # noqa: ANN001 - the bench runner's namespace
    results = results_dir() / "results.json"
    if not results.exists():
        note(f"update: no results at {results}: run sudo ./build.sh update-test first (QEMU, 40-60 min)")
        return 1
    when = dt.datetime.fromtimestamp(results.stat().st_mtime, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    figures = {}
    for line in results.read_text().splitlines():
        if line.startswith("{"):
            figure = json.loads(line)
            figures[figure["metric"]] = figure
    checks = results.with_name("checks.txt")
    passed = failed = 0
    if checks.exists():
        lines = checks.read_text().splitlines()
        passed, failed = sum(" PASS " in x for x in lines), sum(" FAIL " in x for x in lines)
    note(f"update: update-test of {when}: {passed} checks passed, {failed} failed")
    for figure in figures.values():
        emit(figure["metric"], figure["value"], figure["unit"])
    bundle, download = figures.get("update_bundle_mb"), figures.get("update_download_mb")
    if bundle and download and bundle["value"]:
        share = download["value"] / bundle["value"]
        note(f"update: downloaded {share:.0%} of the bundle (target at most {TARGET_DOWNLOAD_SHARE:.0%})")
    return 0 if figures and not failed else 1
