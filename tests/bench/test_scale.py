"""``./build.sh bench --only scale`` (one central) and ``--only scale2`` (two behind HAProxy, with PostgreSQL and
Redis) run end to end in a tiny configuration and print their figures as JSON lines."""
from __future__ import annotations

import asyncio
import json
import math
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench._common import proc_wait_s
from bench._scale.lag import LoopLag
from bench._scale.seed import plan_clerks
from bench._scale.steps import Step

ROOT = Path(__file__).resolve().parents[2]
FIGURES = {"joins_per_s_p99_100ms": "joins/s", "rss_mb": "MB", "kb_per_socket": "KB"}
RUN_TIMEOUT_S = 300


@pytest.mark.parametrize("bench", ["scale", "scale2"])
def test_a_tiny_scale_run_prints_every_figure(bench):
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--only", bench, "--scale-kiosks", "50", "--scale-consoles", "5",
         "--scale-departments", "5", "--scale-rates", "5,10", "--scale-step-s", "2", "--scale-hold-s", "0.2",
         "--scale-all-steps"],  # both steps, whatever the machine's load makes of the first one's p99
        cwd=ROOT, capture_output=True, text=True, timeout=RUN_TIMEOUT_S, stdin=subprocess.DEVNULL)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    printed = {}
    for line in lines:
        figure = json.loads(line)
        assert set(figure) == {"metric", "value", "unit"}, line
        printed[figure["metric"]] = figure
    figures = {f"{bench}_{figure}": unit for figure, unit in FIGURES.items()}
    assert set(figures) <= set(printed), f"missing figures; stderr:\n{done.stderr[-3000:]}"
    for metric, unit in figures.items():
        assert printed[metric]["unit"] == unit
        assert isinstance(printed[metric]["value"], (int, float)) and math.isfinite(printed[metric]["value"])
    assert printed[f"{bench}_rss_mb"]["value"] > 0
    if bench == "scale2":   # the load went through HAProxy to two centrals, one relaying to the leading one
        assert "two central processes (one leading, one relaying its half of the sockets to it) behind HAProxy" \
            in done.stdout
        assert ", haproxy " in done.stdout and ", redis " in done.stdout and "central-b stopped" in done.stderr
        assert "leader                 kept its lease" in done.stdout, done.stdout[-3000:]
        assert printed["scale2_leader_longest_stall_s"]["unit"] == "s"
    # Both steps ran (each line twice: as it ran and in the summary), every visit seen by every console of
    # its department: 10 and 20 visits.
    assert done.stderr.count("target 5/s,") == 1 and done.stdout.count("target 5/s,") == 1, done.stderr[-3000:]
    assert "10/10 visits" in done.stdout and "20/20 visits" in done.stdout, done.stdout[-3000:]
    # Where a slow step's time went: central's wait for a CPU and the load generator's own lateness.
    step_lines = [line for line in done.stdout.splitlines() if "target 5/s," in line or "target 10/s," in line]
    for line in step_lines:
        waited = re.search(r"waited (\d+\.\d+) s for a CPU; loop lag p99 kiosks (\d+) ms, consoles (\d+) ms", line)
        assert waited is not None, line


def test_every_department_gets_clerks_and_each_clerk_serves_one_to_three():
    import random

    departments = [f"d{i}" for i in range(50)]
    plan = plan_clerks(departments, 500, random.Random(1))
    assert all(1 <= len(served) <= 3 and len(set(served)) == len(served) for served in plan)
    assert {d for served in plan for d in served} == set(departments)


def test_a_step_with_a_console_missing_a_visit_fails():
    step = Step(target_rate=10, planned=2)
    kiosks = {"visits": [("a", "d1", 0.0, 0.001), ("b", "d1", 0.1, 0.101)], "failures": {}, "not_started": 0,
              "sent_s": 0.2, "waited_s": 0.0, "start_lag_p99_ms": 0.0}
    step.add(kiosks, {"arrivals": {"a": [2, 0.002, 0.003], "b": [1, 0.102, 0.102]}, "frames": 3, "errors": [],
                      "error_count": 0}, {"d1": 2})
    assert step.latencies_ms == [pytest.approx(3.0)]
    assert not step.passed and "queue.joined at 1 of 2 consoles" in step.describe()


async def test_the_loop_lag_shows_a_blocked_loop():
    lag = LoopLag()
    await asyncio.sleep(0.05)
    quiet = lag.take()
    time.sleep(0.12)   # noqa: ASYNC251 - blocking the loop is what the test measures
    await asyncio.sleep(0.03)
    blocked = lag.take()
    lag.stop()
    assert blocked["max_ms"] >= 100 and blocked["max_ms"] > quiet["max_ms"]


def test_a_process_s_wait_for_a_cpu_is_read():
    waited = proc_wait_s(os.getpid())
    assert waited >= 0 and math.isfinite(waited)
    assert math.isnan(proc_wait_s(2 ** 22 + 1))   # above pid_max: no such process
