"""CPU seconds of each Chromium process below this one, by its role (renderer, GPU, network service, ...)."""
from __future__ import annotations

import os

from bench._common import proc_cpu_s, process_tree


def _chromium_role(pid: int) -> str:
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        args = f.read().decode(errors="replace").replace("\0", " ").split()  # Chromium rewrites its title
    kind = next((a.split("=", 1)[1] for a in args if a.startswith("--type=")), "browser")
    if kind == "utility":
        sub = next((a.split("=", 1)[1] for a in args if a.startswith("--utility-sub-type=")), "")
        return "network" if "NetworkService" in sub else "utility"
    return {"gpu-process": "gpu"}.get(kind, kind)


def chromium_cpu() -> dict[int, tuple[str, float]]:
    """Role and CPU seconds of every Chromium process below this one (browser, renderer, GPU, utilities)."""
    tree, found, todo = process_tree()[0], {}, [os.getpid()]
    while todo:
        pid = todo.pop()
        for child in tree.get(pid, ()):
            todo.append(child)
            try:
                if "chrom" in os.path.basename(os.readlink(f"/proc/{child}/exe")):  # not playwright's node
                    found[child] = (_chromium_role(child), proc_cpu_s(child))
            except OSError:
                continue
    return found


def cpu_between(before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]]) -> dict[str, float]:
    # A process that started during the window counts fully; one that ended is lost (none do here).
    by_role: dict[str, float] = {}
    for pid, (role, t) in after.items():
        by_role[role] = by_role.get(role, 0.0) + t - before.get(pid, (role, 0.0))[1]
    return by_role
