"""``./build.sh bench --only update`` prints the figures of the last ``./build.sh update-test``."""
from __future__ import annotations

import json

from bench import update
from bench.__main__ import parse

FIGURES = [("update_bundle_mb", 401.2, "MB"), ("update_download_mb", 31.5, "MB"), ("update_install_s", 612, "s"),
           ("update_rollback_s", 240, "s")]


def _results(out, checks: str) -> None:
    (out / "update-test").mkdir(parents=True)
    (out / "update-test" / "results.json").write_text(
        "".join(json.dumps({"metric": m, "value": v, "unit": u}) + "\n" for m, v, u in FIGURES))
    (out / "update-test" / "checks.txt").write_text(checks)


def test_the_last_update_tests_figures_are_printed_as_json_lines(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("AMTSKLINGEL_OUT", str(tmp_path))
    _results(tmp_path, "UPDATE-TEST PASS boots-n: ...\nUPDATE-TEST PASS commits-n1: ...\n")
    args, _modules, _parser = parse(["--only", "update"])
    assert update.run(args) == 0
    out, err = capsys.readouterr()
    printed = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert [(f["metric"], f["value"], f["unit"]) for f in printed] == FIGURES
    assert "2 checks passed, 0 failed" in err and "downloaded 8% of the bundle" in err


def test_a_run_with_a_failed_check_or_none_at_all_is_not_a_clean_result(tmp_path, monkeypatch):
    monkeypatch.setenv("AMTSKLINGEL_OUT", str(tmp_path))
    args, _modules, _parser = parse(["--only", "update"])
    assert update.run(args) == 1  # no update-test yet
    _results(tmp_path, "UPDATE-TEST PASS boots-n: ...\nUPDATE-TEST FAIL rolls-back-n2: ...\n")
    assert update.run(args) == 1
