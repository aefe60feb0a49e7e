"""The measurements of one run: pick-up -> first frame, and per mode the streaming window (kiosk CPU, clerk frame
rate) and glass-to-glass, each on a call opened from the clerk's console."""
from __future__ import annotations

import asyncio
import base64
import math
import os
import time
from collections.abc import Awaitable, Callable

import numpy as np

from bench._common import BenchError, note, percentile, proc_cpu_s
from bench._kiosk_call import FPS, HEIGHT, WIDTH, mouth_to_ear
from bench._kiosk_call.clerk_page import (
    GRAB_CLOCK_JS,
    PICKUP_JS,
    VIDEO_STATS_JS,
    describe_window,
    page_offset,
    window,
)
from bench._kiosk_call.cpu import machine_busy, tree_cpu_s
from bench._kiosk_call.kiosk_process import KioskProcess
from bench._limits import RateLimited

ROW_TIMEOUT_S = 10.0
PICKUP_TIMEOUT_S = 15.0
ENDED_TIMEOUT_S = 10.0
MAX_FAILED_CALLS = 3
GRAB_ROWS = 160          # the clock code of a 1280-wide pattern sits in rows 32..127
GRAB_PAUSE_S = (0.02, 0.06)


class Bench:
    def __init__(self, args, central_url: str, credentials: dict, kiosk: KioskProcess, page,
                 new_kiosk: Callable[[], Awaitable[str]]) -> None:
        """``new_kiosk``: registers a kiosk and returns its token; every call comes from a fresh one."""
        self.args, self.url, self.credentials, self.kiosk, self.page = args, central_url, credentials, kiosk, page
        self.new_kiosk = new_kiosk
        self.results: dict = {"pickup": {}, "stream": {}}

    def config(self, mode: str, *, full: bool = True) -> dict:
        return {"mode": mode, "audio": full, "receive": full, "width": WIDTH, "height": HEIGHT, "fps": FPS,
                "tap": self.args.kc_kiosk_video == "encoded"}

    async def open_call(self, cfg: dict) -> dict:
        """Visit request -> row in the console -> pick-up; returns timings (ms from the click)."""
        token = await self.new_kiosk()
        mark = self.kiosk.mark()
        self.kiosk.command("request", cfg, token)
        visit_id = (await self.kiosk.wait("queued", mark, ROW_TIMEOUT_S))[1]
        button = self.page.locator(f"[data-testid=visit-row][data-visit-id='{visit_id}'] "
                                   "[data-testid=pickup-button]:not([disabled])")
        await button.wait_for(timeout=ROW_TIMEOUT_S * 1000)
        offset_s, offset_err_ms = await page_offset(self.page)
        mark = self.kiosk.mark()
        out = await self.page.evaluate(PICKUP_JS, {"visitId": visit_id, "timeoutMs": PICKUP_TIMEOUT_S * 1000,
                                                   "pollMs": 10})
        if out.get("error"):
            raise TimeoutError(f"clerk page: {out['error']} ({out})")
        t0 = (out["origin"] + out["t0"]) / 1000 + offset_s  # the click, on time.time()'s clock
        presented = out.get("presented")
        result = {"clerk_decoded": min(out["decoded"], presented) if presented is not None else out["decoded"],
                  "clerk_decoded_poll": out["decoded"], "clerk_presented": presented, "offset_ms": offset_s * 1000,
                  "clerk_connected": out.get("connected"), "offset_err_ms": offset_err_ms,
                  "clerk_size": (out.get("width"), out.get("height"))}
        if cfg["receive"]:
            first = await self.kiosk.wait("first_video", mark, PICKUP_TIMEOUT_S)
            if any(e[0] == "tap_failed" for e in self.kiosk.events[mark:]):
                raise BenchError("kiosk: the encoded tap does not fit this aiortc (the appliance would decode, "
                                 "as it logs); measure that with --kc-kiosk-video decoded")
            result["kiosk_first_frame"] = (first[1] - t0) * 1000
        for kind, key in (("call_start", "kiosk_call_start"), ("offer_sent", "kiosk_offer_sent"),
                          ("connected", "kiosk_connected")):
            event = next((e for e in self.kiosk.events[mark:] if e[0] == kind), None)
            result[key] = (event[1] - t0) * 1000 if event else None
        return result

    async def close_call(self) -> None:
        mark = self.kiosk.mark()
        await self.page.click("[data-testid=hangup-button]", timeout=5000)
        await self.kiosk.wait("ended", mark, ENDED_TIMEOUT_S)
        await self.page.locator("[data-testid=call-view]").wait_for(state="hidden", timeout=ENDED_TIMEOUT_S * 1000)
        await asyncio.sleep(0.3)  # both peers closed; sockets and threads gone before the next call

    async def abandon_call(self) -> None:
        """After a failure: end whatever is open, bounded."""
        try:
            if await self.page.locator("[data-testid=call-view]").is_visible():
                await self.close_call()
                return
        except Exception as exc:  # noqa: BLE001 - best effort, reported
            note(f"  could not hang up from the console: {exc}")
        mark = self.kiosk.mark()
        self.kiosk.command("reset")
        try:
            await self.kiosk.wait("ended", mark, ENDED_TIMEOUT_S)
        except TimeoutError as exc:
            raise BenchError(f"the kiosk could not leave its visit: {exc}") from None
        await asyncio.sleep(1.0)

    # -- 1. pick-up ---------------------------------------------------------------
    async def pickup(self, mode: str, calls: int) -> None:
        samples, failures = [], []
        for i in range(calls + 1):  # the first call warms up codecs and JITs; not reported
            try:
                result = await self.open_call(self.config(mode))
                await self.close_call()
            except RateLimited:
                raise  # the plan is wrong: no figure of this run would mean what it says
            except (TimeoutError, BenchError) as exc:
                failures.append(str(exc))
                note(f"  {mode} call {i}: FAILED {exc}")
                if len(failures) > MAX_FAILED_CALLS:
                    raise BenchError(f"{mode}: {len(failures)} pick-ups failed; last: {exc}") from None
                await self.abandon_call()
                continue
            f = {k: math.nan if v is None else v for k, v in result.items()}
            note(f"  {mode} call {i}{' (warm-up)' if i == 0 else ''}: clerk decoded "
                 f"{f['clerk_decoded']:.0f} ms (getStats poll {f['clerk_decoded_poll']:.0f}, rVFC presented "
                 f"{f['clerk_presented']:.0f}), "
                 f"kiosk first frame {f['kiosk_first_frame']:.0f} ms (kiosk call.start "
                 f"{f['kiosk_call_start']:.0f}, offer {f['kiosk_offer_sent']:.0f}, "
                 f"ICE+DTLS {f['kiosk_connected']:.0f} ms; clock offset {f['offset_ms']:+.1f} +-{f['offset_err_ms']:.1f} ms)")
            if i:
                samples.append(result)
        self.results["pickup"][mode] = {"samples": samples, "failures": failures}

    # -- 2.-4. streaming ----------------------------------------------------------
    async def stream(self, mode: str, full: bool) -> dict:
        args = self.args
        cfg = self.config(mode, full=full)
        label = f"{mode} {'call' if full else 'video only'}"
        try:
            await self.open_call(cfg)
        except RateLimited:
            raise
        except (TimeoutError, BenchError) as exc:
            await self.abandon_call()
            raise BenchError(f"{label}: call did not start: {exc}") from None
        try:
            await asyncio.sleep(args.kc_warmup)
            s0 = await self.page.evaluate(VIDEO_STATS_JS)
            k0 = await self.kiosk.stats()
            cpu0 = proc_cpu_s(self.kiosk.pid)
            enc0 = proc_cpu_s(self.kiosk.encoder_pid)
            chrome0, ours0 = tree_cpu_s(os.getpid())
            busy0, total0 = machine_busy()
            w0 = time.monotonic()
            await asyncio.sleep(args.kc_seconds)
            wall = time.monotonic() - w0
            cpu = proc_cpu_s(self.kiosk.pid) - cpu0
            enc = proc_cpu_s(self.kiosk.encoder_pid) - enc0
            chrome1, ours1 = tree_cpu_s(os.getpid())
            busy1, total1 = machine_busy()
            s1 = await self.page.evaluate(VIDEO_STATS_JS)
            k1 = await self.kiosk.stats()
            if not s0 or not s1:
                raise BenchError(f"{label}: no inbound video statistics at the clerk")
            expected = "video/H264" if mode in ("h264", "passthrough") else "video/VP8"
            if s1["codec"] != expected:
                raise BenchError(f"{label}: negotiated {s1['codec']}, expected {expected}")
            r = window(s0, s1)
            r.update({
                "mode": mode, "full": full, "wall_s": wall,
                "kiosk_cpu_per_min": cpu / wall * 60, "encoder_cpu_per_min": enc / wall * 60 if mode == "passthrough" else 0.0,
                "chromium_cpu_pct": 100 * (chrome1 - chrome0) / wall,
                "ours_cpu_pct": 100 * (ours1 - ours0) / wall,
                # of one core, like the others; /proc/stat counts jiffies of all CPUs together
                "machine_busy_pct": 100 * (os.cpu_count() or 1) * (busy1 - busy0) / max(1, total1 - total0),
                "kiosk_source_fps": ((k1.get("source_frames", 0) - k0.get("source_frames", 0)) / wall
                                     if "source_frames" in k1 else None),
                "encoded_dropped": (k1.get("encoded_dropped", 0) - k0.get("encoded_dropped", 0)
                                    if "encoded_dropped" in k1 else None),
                "remote_video_fps": (k1["remote_video"] - k0["remote_video"]) / wall,
            })
            note(f"  {label}: kiosk CPU {r['kiosk_cpu_per_min']:.1f} s/min"
                 + (f" (+ stand-in encoder {r['encoder_cpu_per_min']:.1f} s/min)" if mode == "passthrough" else "")
                 + f", clerk {describe_window(r)}; CPU in % of one core: "
                 f"Chromium {r['chromium_cpu_pct']:.0f} %, this benchmark in all {r['ours_cpu_pct']:.0f} %, "
                 f"machine {r['machine_busy_pct']:.0f} % (of one core; {os.cpu_count()} cores)")
            if args.kc_g2g_seconds > 0:
                r["g2g"] = await self.glass_to_glass(label)
            if full and args.kc_clicks > 0:
                r["m2e"] = await mouth_to_ear.measure(self.page, self.kiosk, args.kc_clicks, label)
            return r
        finally:
            try:
                await self.close_call()
            except (TimeoutError, BenchError, Exception) as exc:  # noqa: BLE001
                note(f"  {label}: hang-up failed: {exc}")
                await self.abandon_call()

    async def glass_to_glass(self, label: str) -> dict:
        from appliance.hardware.fake.camera import read_clock

        rng = np.random.default_rng(7)
        offset_s, offset_err_ms = await page_offset(self.page)
        latencies, unreadable = [], 0
        s0 = await self.page.evaluate(VIDEO_STATS_JS)
        end = time.monotonic() + self.args.kc_g2g_seconds
        while time.monotonic() < end:
            grab = await self.page.evaluate(GRAB_CLOCK_JS, GRAB_ROWS)
            if grab is None:
                unreadable += 1
            else:
                luma = np.frombuffer(base64.b64decode(grab["luma"]), np.uint8).reshape(grab["h"], grab["w"])
                stamp = read_clock(luma)
                if stamp is None:
                    unreadable += 1
                else:
                    now_ms = int(round((grab["t"] / 1000 + offset_s) * 1000)) % 2**32
                    delta = (now_ms - stamp) % 2**32
                    latencies.append(delta - 2**32 if delta >= 2**31 else delta)
            await asyncio.sleep(float(rng.uniform(*GRAB_PAUSE_S)))
        s1 = await self.page.evaluate(VIDEO_STATS_JS)
        latencies.sort()
        g = {"samples": latencies, "unreadable": unreadable, "offset_err_ms": offset_err_ms, "window": window(s0, s1)}
        note(f"  {label}: glass-to-glass p50 {percentile(latencies, 50):.0f} ms, p95 {percentile(latencies, 95):.0f} ms "
             f"({len(latencies)} grabs, {unreadable} unreadable, offset +-{offset_err_ms:.1f} ms); while grabbing: "
             f"{describe_window(g['window'])}")
        return g
