"""The self-test's console lines and helpers: every check reports through here.

Each check prints one line, ``AMTSKLINGEL-SELFTEST PASS|FAIL|INFO <name>: <detail>``; the boot test on
the host reads them from QEMU's serial port. Standard library only.
"""
from __future__ import annotations

import subprocess

TAG = "AMTSKLINGEL-SELFTEST"
results: list[tuple[str, str, str]] = []


def report(status: str, name: str, detail: str = "") -> None:
    results.append((status, name, detail))
    print(f"{TAG} {status} {name}: {detail}", flush=True)


def check(name: str, ok: bool, detail: str = "") -> None:
    report("PASS" if ok else "FAIL", name, detail)


def run(*cmd: str, timeout: float = 900) -> str:
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    return (done.stdout + done.stderr).strip()


def diagnose() -> None:
    """After a failure: what systemd and the journal say, for the boot test's log."""
    print(f"{TAG} DIAG begin", flush=True)
    for title, cmd in (("failed units", ("systemctl", "list-units", "--failed", "--plain", "--no-legend", "--no-pager")),
                       ("jobs", ("systemctl", "list-jobs", "--no-legend", "--no-pager")),
                       ("journal, warnings and worse", ("journalctl", "-b", "-p", "warning", "-n", "60", "--no-pager",
                                                        "-o", "short-monotonic"))):
        print(f"--- {title}", flush=True)
        print(run(*cmd, timeout=60) or "(none)", flush=True)
    # A failed service's own last words (a Python traceback, "device busy") are logged at the info level, so the
    # warnings above leave them out: each failed unit's journal, whatever the level.
    failed = run("systemctl", "list-units", "--failed", "--plain", "--no-legend", "--no-pager", timeout=60)
    for unit in [line.split()[0] for line in failed.splitlines() if line.strip()][:4]:
        print(f"--- journal of {unit}", flush=True)
        print(run("journalctl", "-b", "-u", unit, "-n", "30", "--no-pager", "-o", "short-monotonic", timeout=60)
              or "(none)", flush=True)
    print(f"{TAG} DIAG end", flush=True)

