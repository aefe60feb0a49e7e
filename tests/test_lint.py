"""The whole tree passes ``ruff check`` with the project's settings (pyproject.toml), so a finding shows up in
the test run of the change that brings it, not later in someone else's."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _findings() -> list[dict]:
    done = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "--output-format", "json", "."],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode in (0, 1), f"ruff did not run: {done.stderr}"  # 1 means "findings"
    return json.loads(done.stdout)


def test_ruff_finds_nothing_in_the_tree():
    found = [f"{Path(f['filename']).resolve().relative_to(ROOT).as_posix()}:{f['location']['row']}: "
             f"{f['code']} {f['message']}" for f in _findings()]
    assert not found, ("ruff check reports (run `.venv/bin/ruff check .`; `--fix` mends some; a `# noqa: CODE` "
                       "only with the reason the rule does not fit):\n" + "\n".join(found))
