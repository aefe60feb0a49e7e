"""The figures of each candidate over its repetitions, printed as a table and as one JSON line per figure."""
from __future__ import annotations

import datetime as dt
import os
import statistics
import subprocess

from bench._common import CHROMIUM, emit, percentile
from bench._kiosk_video.candidate import Run

ROLES = ("renderer", "gpu", "network", "browser", "utility")


def _p(values: list[float], q: float) -> float:
    return percentile(sorted(values), q)


def _median(values) -> float:
    values = [v for v in values if v == v]
    return statistics.median(values) if values else float("nan")


def figures(group: list[Run], baseline: list[Run]) -> dict:
    """One candidate's figures over its repetitions: median of the CPU and rate figures,
    latency percentiles over the pooled samples."""
    own = [v for r in group for v in r.kiosk["latency_ms"]]
    ref = own or [v for r in baseline for v in r.kiosk["latency_ms"]]
    kiosk_ref = statistics.median(ref) if ref else float("nan")
    page = [v for r in group for v in r.page_latency_ms]
    added = [v - kiosk_ref for v in page]
    out = {
        "kiosk_cpu_s_per_min": _median(r.per_min(r.kiosk_cpu_s) for r in group),
        "chromium_cpu_s_per_min": _median(r.per_min(r.chromium_cpu_s) for r in group),
    }
    for role in ROLES:
        out[f"chromium_{role}_cpu_s_per_min"] = _median(r.per_min(r.chromium_roles.get(role, 0.0)) for r in group)
    out["total_cpu_s_per_min"] = _median(r.per_min(r.kiosk_cpu_s + r.chromium_cpu_s) for r in group)
    if baseline and group is not baseline:
        base = _median(r.per_min(r.kiosk_cpu_s + r.chromium_cpu_s) for r in baseline)
        out["total_minus_baseline_cpu_s_per_min"] = out["total_cpu_s_per_min"] - base
    out.update({
        "page_fps": _median(r.fps for r in group) if group[0].path != "baseline" else float("nan"),
        "kiosk_received_fps": _median(r.kiosk["decoded"] / r.seconds for r in group if r.seconds),
        "capture_to_decoded_ms.p50": kiosk_ref,
        "capture_to_page_ms.p50": _p(page, 50),
        "capture_to_page_ms.p95": _p(page, 95),
        "added_ms.p50": _p(added, 50),
        "added_ms.p95": _p(added, 95),
        "latency_samples": len(page),
        "unreadable_samples": sum(r.unreadable for r in group),
        "repetitions": len(group),
    })
    return out


def _groups(runs: list[Run]) -> dict[tuple, list[Run]]:
    groups: dict[tuple, list[Run]] = {}
    for r in runs:
        groups.setdefault((r.content, r.size, r.path), []).append(r)
    return groups


def report(runs: list[Run], chromium: str = CHROMIUM, gpu: bool = False) -> None:
    groups = _groups(runs)
    print()
    print(f"kiosk video path: clerk (aiortc, VP8) -> kiosk (aiortc) -> Chromium page; {_cpu_model()}, "
          f"{os.cpu_count()} CPUs, {_chromium_version(chromium)} "
          f"({'GPU allowed' if gpu else '--disable-gpu: software compositing'}), {dt.date.today().isoformat()}")
    print(f"  {'path':<15}{'size':>9}{'content':>8}{'kiosk':>7}{'chrom':>7}{'(rend/gpu/net/brws)':>21}{'sum':>6}"
          f"{'vs base':>8}{'fps':>6}{'cap->page':>10}{'p95':>5}{'added':>7}{'p95':>5}{'n':>5}{'load':>6}")
    for (content, size, path), group in groups.items():
        f = figures(group, groups.get((content, size, "baseline"), []))
        roles = "/".join(f"{f[f'chromium_{r}_cpu_s_per_min']:.1f}" for r in ROLES[:4])
        errors = sorted({e for r in group for e in r.errors})
        print(f"  {path:<15}{size:>9}{content:>8}{f['kiosk_cpu_s_per_min']:>7.2f}{f['chromium_cpu_s_per_min']:>7.2f}"
              f"{roles:>21}{f['total_cpu_s_per_min']:>6.1f}{f.get('total_minus_baseline_cpu_s_per_min', float('nan')):>+8.1f}"
              f"{f['page_fps']:>6.1f}{f['capture_to_page_ms.p50']:>10.1f}{f['capture_to_page_ms.p95']:>5.0f}"
              f"{f['added_ms.p50']:>7.1f}{f['added_ms.p95']:>5.0f}{f['latency_samples']:>5}"
              f"{_median(r.load[0] for r in group):>6.1f}"
              + (f"  unreadable {f['unreadable_samples']}" if f["unreadable_samples"] else "")
              + (f"  errors {errors[:2]}" if errors else ""))
    print("  CPU: seconds per minute of video (60 = one core busy), median of the repetitions; kiosk = the kiosk")
    print("  process, chrom = all Chromium processes (split: renderer/gpu/network service/browser); 'vs base' =")
    print("  sum minus baseline's sum (kiosk receive+decode, idle page). Latency ms over pooled samples:")
    print("  capture->page p50/p95; added = capture->page minus the kiosk's capture->decoded median (for paths")
    print("  without a decode in the kiosk: the baseline's). n = latency samples; load = 1-min load average.")
    print()
    for (content, size, path), group in groups.items():
        tag = f"kiosk_video.{path}.{size}" + ("" if content == "pattern" else f".{content}")
        for key, value in figures(group, groups.get((content, size, "baseline"), [])).items():
            unit = "s/min" if "cpu" in key else "fps" if "fps" in key else "ms" if "ms" in key else "count"
            emit(f"{tag}.{key}", value, unit)


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def _chromium_version(chromium: str) -> str:
    try:
        out = subprocess.run([chromium, "--version"], capture_output=True, text=True, timeout=20).stdout
        return out.strip().split(" built")[0]
    except (OSError, subprocess.TimeoutExpired):
        return "Chromium ?"
