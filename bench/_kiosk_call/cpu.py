"""CPU used while a call streams: of the processes below the benchmark (Chromium apart) and of the machine."""
from __future__ import annotations

from bench._common import proc_cpu_s, process_tree


def tree_cpu_s(root_pid: int) -> tuple[float, float]:
    """CPU seconds of (the chromium processes, all processes) below ``root_pid``, ``root_pid`` itself included.

    Below this process: Playwright's driver, the browser and its children, the kiosk and the stand-in encoder.
    """
    children, names = process_tree()
    chromium, total, stack = 0.0, 0.0, [root_pid]
    while stack:
        pid = stack.pop()
        stack.extend(children.get(pid, ()))
        try:
            cpu = proc_cpu_s(pid)
        except OSError:  # gone meanwhile
            continue
        total += cpu
        if "chrom" in names.get(pid, ""):
            chromium += cpu
    return chromium, total


def machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of all CPUs since boot, from /proc/stat."""
    with open("/proc/stat", encoding="ascii") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    total = sum(values[:8])       # guest time is already inside user
    return total - idle, total
