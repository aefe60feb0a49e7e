"""Clerk's video -> kiosk page: CPU, added latency and frame rate of each delivery path.

What is measured
----------------
Three kinds of process, none sharing CPU accounting with another:

* the clerk: an aiortc peer (own process) sending the test pattern
  (``TestPatternTrack``, or ``--kvp-content busy`` for camera-like content) as VP8;
* the kiosk: an aiortc peer (own process) receiving it, exactly as ``CallPeer``
  does, and delivering it to the page by one candidate path (``bench/_kiosk_video/kiosk.py``);
* Debian's Chromium, headless, showing the page (``bench/_kiosk_video/page.js``).

Paths (a) raw I420 over a WebSocket: ``raw-webgl`` (WebGL YUV shader),
``raw-2d`` (JavaScript YUV->RGB + putImageData), ``raw-videoframe`` (WebCodecs
VideoFrame drawn into the canvas), ``raw-generator`` (VideoFrame into the <video>
through a MediaStreamTrackGenerator); (b) ``jpeg-ws`` (PyAV JPEG over a WebSocket
into a canvas), ``mjpeg-http`` (multipart JPEG into an <img>); (c) ``webrtc-vp8``
(aiortc re-encodes, loopback peer connection to the page); (d) ``direct``
(Chromium is the clerk's peer; the kiosk process takes no part); (e) encoded
passthrough: the kiosk takes the clerk's VP8 frames before aiortc decodes them and
the page decodes them with WebCodecs: ``vp8-ws`` (WebSocket, into the <video>),
``vp8-ws-canvas`` (into the canvas), and ``feed``, what ships
(``appliance.kiosk.video_feed`` on Flask + ``static/clerk-video.js``).
``baseline`` receives and decodes in the kiosk and shows nothing: the cost every
kiosk-side path starts from.

Per candidate, after a warm-up: CPU seconds per minute of video of the kiosk
process (``/proc/<pid>/stat``) and of Chromium (sum over all its processes), the
frames shown per second, and latency. The page records the time each frame is put
on screen (canvas drawn, ``requestVideoFrameCallback`` for <video>, a change seen
on an animation frame for <img>) and, every 3rd frame, the picture's top-left
corner; ``read_clock`` gives the capture time stamped in it. "capture->page" is
that difference; "added" is it minus the median capture->decoded time measured
in the kiosk process of the same run (for ``direct``: of the ``baseline`` run).

Chromium runs with --disable-gpu as everywhere in this project's tests: WebGL is
SwiftShader, compositing is software. On a Pi, ``--kvp-gpu`` lets Chromium use the
GPU (V3D) as the kiosk does; see docs/decisions/0004-kiosk-clerk-video-path.md.

Everything stays on loopback in a loopback-only network namespace; no ICE server is
configured anywhere; every wait is bounded; nothing is written to disk.
"""
from __future__ import annotations

import asyncio
import os
import sys

from bench._common import CHROMIUM, BenchError, note
from bench._kiosk_video.candidate import Run, run_one
from bench._kiosk_video.report import figures, report

NAME = "kiosk_video_path"
PATHS = ("baseline", "raw-webgl", "raw-2d", "raw-videoframe", "raw-generator", "vp8-ws", "vp8-ws-canvas",
         "feed", "jpeg-ws", "mjpeg-http",
         "webrtc-vp8", "direct")


def _require_isolated_network() -> None:
    with open("/proc/self/net/dev", encoding="ascii") as f:
        interfaces = {line.split(":")[0].strip() for line in f.readlines()[2:]}
    if os.environ.get("AMTSKLINGEL_NETNS") != "1" or interfaces != {"lo"}:
        raise BenchError("WebRTC gathers candidates on every interface: run in the loopback-only namespace, "
                         "e.g. tools/netns-run .venv/bin/python -m bench --only kiosk_video_path")


async def _run(args) -> int:
    from playwright.async_api import async_playwright

    paths = args.kvp_paths or list(PATHS)
    if "baseline" not in paths:
        paths = ["baseline", *paths]
    sizes = [tuple(int(v) for v in s.split("x")) for s in args.kvp_sizes]
    seconds = args.kvp_seconds or (4.0 if args.quick else 12.0)
    warmup = 1.5 if args.quick else 3.0
    runs: list[Run] = []
    failed = 0
    async with async_playwright() as pw:
        # Repetitions go round the whole list, so a burst of load elsewhere on the machine
        # hits one repetition of several paths rather than every repetition of one path.
        for rep in range(args.kvp_repeat):
            for content in args.kvp_content:
                for width, height in sizes:
                    for path in paths:
                        note(f"[{rep + 1}/{args.kvp_repeat}] {path} {width}x{height} {content}: "
                             f"{seconds:.0f} s measured")
                        try:
                            run = await run_one(pw, path, width, height, content, warmup, seconds,
                                                args.kvp_chromium, args.kvp_gpu)
                        except BenchError as exc:
                            note(f"  FAILED: {exc}")
                            failed += 1
                            continue
                        runs.append(run)
                        base = [b for b in runs if (b.path, b.size, b.content) == ("baseline", run.size, content)]
                        f = figures([run], base)
                        note(f"  kiosk {f['kiosk_cpu_s_per_min']:.2f} s/min, chromium "
                             f"{f['chromium_cpu_s_per_min']:.2f} s/min, {f['page_fps']:.1f} fps, "
                             f"added p50 {f['added_ms.p50']:.1f} ms, load {run.load[0]:.1f}")
    report(runs, args.kvp_chromium, args.kvp_gpu)
    return 1 if failed else 0


def add_arguments(parser) -> None:
    group = parser.add_argument_group(NAME)
    group.add_argument("--kvp-paths", nargs="+", choices=PATHS, metavar="PATH",
                       help=f"paths to measure (default all: {', '.join(PATHS)}); baseline always runs")
    group.add_argument("--kvp-sizes", nargs="+", default=["640x480", "1280x720"], metavar="WxH",
                       help="clerk video sizes (default 640x480 1280x720)")
    group.add_argument("--kvp-content", nargs="+", default=["pattern"], choices=("pattern", "busy"),
                       help="pattern: the plain test pattern; busy: camera-like texture and noise below the clock")
    group.add_argument("--kvp-seconds", type=float, default=None,
                       help="measured seconds per candidate (default 12; 4 with --quick)")
    group.add_argument("--kvp-repeat", type=int, default=1,
                       help="repetitions of the whole set (figures: median; latency: pooled samples)")
    group.add_argument("--kvp-chromium", default=CHROMIUM, help=f"the browser to drive (default {CHROMIUM})")
    group.add_argument("--kvp-gpu", action="store_true",
                       help="let Chromium use the GPU (drop --disable-gpu), e.g. on a Pi; the default is software")


def run(args) -> int:
    try:
        _require_isolated_network()
        return asyncio.run(_run(args))
    except BenchError as exc:
        note(f"{NAME}: {exc}")
        return 2


if __name__ == "__main__":
    from bench.__main__ import main as _main

    sys.exit(_main(["--only", NAME, *sys.argv[1:]]))
