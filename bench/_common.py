"""What the benchmarks share: /proc readings, figures, output (JSON lines on stdout, notes on
stderr), Debian's Chromium, and running a benchmark in a temporary directory."""
from __future__ import annotations

import asyncio
import json
import math
import os
import shutil
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
    "--allow-loopback-in-peer-connection", "--autoplay-policy=no-user-gesture-required",
]


class BenchError(RuntimeError):
    """The benchmark could not run as set up (not a slow result: a broken one)."""


# -- /proc ---------------------------------------------------------------------

def proc_cpu_s(pid: int) -> float:
    """utime + stime of the whole process (all threads), in seconds."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        data = f.read()
    fields = data[data.rindex(")") + 2:].split()  # fields[0] is field 3 (state) of proc(5)
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def proc_wait_s(pid: int) -> float:
    """Seconds the process's main thread has waited, runnable, for a CPU (the second field of
    /proc/PID/schedstat: time on a run queue); NaN where the kernel does not keep it. Beside its CPU time it
    tells a process that had nothing to do from one that had work but no core to do it on."""
    try:
        with open(f"/proc/{pid}/schedstat", encoding="ascii") as f:
            return int(f.read().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return math.nan


def proc_status_mb(pid: int, key: str) -> float:
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024  # kB
    raise BenchError(f"/proc/{pid}/status has no {key}")


def process_tree() -> tuple[dict[int, list[int]], dict[int, str]]:
    """(parent pid -> child pids, pid -> command name) of every process now."""
    children: dict[int, list[int]] = {}
    names: dict[int, str] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as f:
                data = f.read()
        except OSError:
            continue
        pid = int(entry)
        names[pid] = data[data.index("(") + 1:data.rindex(")")]
        children.setdefault(int(data[data.rindex(")") + 2:].split()[1]), []).append(pid)
    return children, names


# -- figures and output ------------------------------------------------------------

def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of an already sorted list."""
    if not sorted_values:
        return math.nan
    return sorted_values[max(0, math.ceil(q / 100 * len(sorted_values)) - 1)]


def emit(metric: str, value: float, unit: str) -> None:
    value = round(value, 3) if isinstance(value, float) and math.isfinite(value) else value
    print(json.dumps({"metric": metric, "value": value, "unit": unit}), flush=True)


def note(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# -- running -----------------------------------------------------------------------

def run_in_tmp(name: str, main: Callable[[Path], Awaitable[int]], prefix: str, *, keep: bool = False) -> int:
    """``asyncio.run(main(tmp))`` in a fresh temporary directory, removed afterwards unless ``keep``.
    A :class:`BenchError` is noted and exits with 2."""
    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        return asyncio.run(main(tmp))
    except BenchError as exc:
        note(f"{name}: {exc}")
        return 2
    finally:
        if keep:
            note(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
