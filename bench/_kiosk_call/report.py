"""The summary of a run, printed for a person and as one JSON line per figure."""
from __future__ import annotations

import math
import os
import statistics

from bench._common import emit, percentile
from bench._kiosk_call import FPS, HEIGHT, NAME, WIDTH
from bench._kiosk_call.clerk_page import describe_window
from bench._kiosk_call.measurements import Bench


def _stats(values: list[float]) -> dict:
    values = sorted(v for v in values if v is not None)
    return {"n": len(values), "p50": statistics.median(values) if values else math.nan,
            "p90": percentile(values, 90), "max": percentile(values, 100)}


def report(bench: Bench, args) -> int:
    failed = 0
    print()
    print(f"kiosk call: central in-process, kiosk (aiortc, own process), clerk = headless Chromium console; "
          f"{WIDTH}x{HEIGHT}@{FPS}; {os.cpu_count()} CPUs")
    for mode, res in bench.results["pickup"].items():
        s = res["samples"]
        clerk, poll, presented, kiosk = (_stats([x[k] for x in s]) for k in (
            "clerk_decoded", "clerk_decoded_poll", "clerk_presented", "kiosk_first_frame"))
        parts = {k: _stats([x[k] for x in s]) for k in ("kiosk_call_start", "kiosk_offer_sent", "kiosk_connected",
                                                         "clerk_connected")}
        print(f"  pick-up -> first frame, {mode}: {clerk['n']} calls ({len(res['failures'])} failed)")
        print(f"    clerk decoded    p50 {clerk['p50']:6.0f} ms  p90 {clerk['p90']:6.0f} ms  max {clerk['max']:6.0f} ms"
              f"   (getStats poll p50 {poll['p50']:.0f} ms, rVFC presented p50 {presented['p50']:.0f} ms)")
        print(f"    kiosk {'received' if args.kc_kiosk_video == 'encoded' else 'decoded '}   p50 {kiosk['p50']:6.0f} ms  "
              f"p90 {kiosk['p90']:6.0f} ms  max {kiosk['max']:6.0f} ms")
        print(f"    of which (p50): kiosk has call.start {parts['kiosk_call_start']['p50']:.0f} ms, offer sent "
              f"{parts['kiosk_offer_sent']['p50']:.0f} ms, kiosk ICE+DTLS connected {parts['kiosk_connected']['p50']:.0f} ms, "
              f"clerk pc connected (10 ms poll) {parts['clerk_connected']['p50']:.0f} ms")
        emit(f"{NAME}.pickup_calls.{mode}", clerk["n"], "count")
        emit(f"{NAME}.pickup_failures.{mode}", len(res["failures"]), "count")
        kiosk_metric = "first_received" if args.kc_kiosk_video == "encoded" else "first_decoded"
        for side, st, metric in (("clerk", clerk, "first_decoded"), ("kiosk", kiosk, kiosk_metric)):
            for q in ("p50", "p90", "max"):
                emit(f"{NAME}.pickup_to_{side}_{metric}_ms.{mode}.{q}", st[q], "ms")
        emit(f"{NAME}.pickup_to_clerk_first_decoded_poll_ms.{mode}.p50", poll["p50"], "ms")
        emit(f"{NAME}.pickup_to_clerk_first_presented_ms.{mode}.p50", presented["p50"], "ms")
        failed |= bool(res["failures"]) or clerk["n"] < args.kc_calls
    streams = bench.results["stream"]
    if streams:
        print("  appliance (kiosk process) CPU per minute of call, clerk frame rate, glass-to-glass:")
        for (mode, full), r in streams.items():
            if isinstance(r, str):
                print(f"    {mode:11s} {'call' if full else 'video only':10s} FAILED: {r}")
                failed = 1
                continue
            g = r.get("g2g")
            g2g = (f", glass-to-glass p50 {percentile(g['samples'], 50):.0f} / p95 {percentile(g['samples'], 95):.0f} ms"
                   f" ({len(g['samples'])} grabs)") if g else ""
            print(f"    {mode:11s} {'call' if full else 'video only':10s} {r['kiosk_cpu_per_min']:5.1f} CPU s/min"
                  + (f" (stand-in encoder, not counted: {r['encoder_cpu_per_min']:.1f})" if mode == "passthrough" else "")
                  + f"; clerk {describe_window(r)}{g2g}; CPU in % of one core: Chromium "
                  f"{r['chromium_cpu_pct']:.0f}, this benchmark {r['ours_cpu_pct']:.0f}, whole machine "
                  f"{r['machine_busy_pct']:.0f} (others {r['machine_busy_pct'] - r['ours_cpu_pct']:.0f})")
            variant = "call" if full else "video_only"
            emit(f"{NAME}.kiosk_cpu_s_per_min.{mode}.{variant}", r["kiosk_cpu_per_min"], "s/min")
            if mode == "passthrough":
                emit(f"{NAME}.standin_encoder_cpu_s_per_min.{variant}", r["encoder_cpu_per_min"], "s/min")
            emit(f"{NAME}.clerk_fps.{mode}.{variant}", r["fps"], "fps")
            if g:
                emit(f"{NAME}.glass_to_glass_ms.{mode}.{variant}.p50", percentile(g["samples"], 50), "ms")
                emit(f"{NAME}.glass_to_glass_ms.{mode}.{variant}.p95", percentile(g["samples"], 95), "ms")
                emit(f"{NAME}.glass_to_glass_grabs.{mode}.{variant}", len(g["samples"]), "count")
                emit(f"{NAME}.clerk_video_jitter_buffer_ms.{mode}.{variant}", g["window"]["jitter_buffer_ms"], "ms")
            m2e = r.get("m2e")
            if m2e:
                for way in ("kiosk_to_clerk", "clerk_to_kiosk"):
                    samples = m2e[way]
                    print(f"      mouth-to-ear {way.replace('_', ' ')}: p50 {percentile(samples, 50):.0f} ms, "
                          f"p95 {percentile(samples, 95):.0f} ms ({len(samples)} clicks, {m2e['lost'][way]} lost)")
                    emit(f"{NAME}.mouth_to_ear_ms.{way}.{mode}.p50", percentile(samples, 50), "ms")
                    emit(f"{NAME}.mouth_to_ear_ms.{way}.{mode}.p95", percentile(samples, 95), "ms")
                    emit(f"{NAME}.mouth_to_ear_lost.{way}.{mode}", m2e["lost"][way], "count")
                    failed |= m2e["lost"][way] > len(samples) // 4
        # The headline mouth-to-ear figures: the Pi 4's call (passthrough), else the first call measured.
        calls = [r for (mode, full), r in streams.items() if full and isinstance(r, dict) and r.get("m2e")]
        headline = streams.get(("passthrough", True))
        headline = headline if isinstance(headline, dict) and headline.get("m2e") else (calls[0] if calls else None)
        if headline:
            for way in ("kiosk_to_clerk", "clerk_to_kiosk"):
                emit(f"{NAME}.mouth_to_ear_ms.{way}.p50", percentile(headline["m2e"][way], 50), "ms")
        for variant, full in (("call", True), ("video_only", False)):
            pt = streams.get(("passthrough", full))
            for live in ("h264", "vp8"):
                other = streams.get((live, full))
                if isinstance(pt, dict) and isinstance(other, dict) and other["kiosk_cpu_per_min"] > 0:
                    ratio = pt["kiosk_cpu_per_min"] / other["kiosk_cpu_per_min"]
                    print(f"    passthrough / live {live} ({variant.replace('_', ' ')}): {ratio:.3f}")
                    emit(f"{NAME}.passthrough_over_{live}_cpu.{variant}", ratio, "ratio")
    print()
    return 1 if failed else 0
