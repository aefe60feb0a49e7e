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
import base64
import datetime as dt
import multiprocessing
import os
import statistics
import subprocess
import sys
import time

from appliance.hardware.fake.camera import read_clock_crop
from bench._common import CHROMIUM, CHROMIUM_FLAGS, BenchError, emit, note, percentile, proc_cpu_s, process_tree
from bench._kiosk_video import clerk as clerk_proc
from bench._kiosk_video import kiosk as kiosk_proc

NAME = "kiosk_video_path"
PATHS = ("baseline", "raw-webgl", "raw-2d", "raw-videoframe", "raw-generator", "vp8-ws", "vp8-ws-canvas",
         "feed", "jpeg-ws", "mjpeg-http",
         "webrtc-vp8", "direct")
VIEWPORT = {"width": 1280, "height": 720}  # the page fills it; the picture is scaled to fit
PIPE_TIMEOUT_S = 30.0
FIRST_FRAMES_TIMEOUT_S = 30.0


class Run:
    """One candidate path at one size: the raw observations."""

    def __init__(self, path: str, width: int, height: int, content: str) -> None:
        self.path, self.width, self.height, self.content = path, width, height, content
        self.seconds = 0.0
        self.kiosk_cpu_s = 0.0
        self.chromium_cpu_s = 0.0
        self.chromium_roles: dict[str, float] = {}
        self.page_frames = 0
        self.kiosk: dict = {"decoded": 0, "delivered": 0, "latency_ms": []}
        self.page_latency_ms: list[float] = []
        self.unreadable = 0
        self.errors: list[str] = []
        self.load = (0.0, 0.0)

    @property
    def size(self) -> str:
        return f"{self.width}x{self.height}"

    def per_min(self, cpu_s: float) -> float:
        return cpu_s / self.seconds * 60 if self.seconds else float("nan")

    @property
    def fps(self) -> float:
        return self.page_frames / self.seconds if self.seconds else float("nan")

    def kiosk_median_ms(self) -> float:
        return statistics.median(self.kiosk["latency_ms"]) if self.kiosk["latency_ms"] else float("nan")


# -- processes and /proc ---------------------------------------------------------

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


def _cpu_between(before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]]) -> dict[str, float]:
    # A process that started during the window counts fully; one that ended is lost (none do here).
    by_role: dict[str, float] = {}
    for pid, (role, t) in after.items():
        by_role[role] = by_role.get(role, 0.0) + t - before.get(pid, (role, 0.0))[1]
    return by_role


async def _ask(conn, message: tuple, expect: str, timeout: float = PIPE_TIMEOUT_S) -> tuple:
    if message:
        conn.send(message)
    loop = asyncio.get_running_loop()
    ready = await loop.run_in_executor(None, conn.poll, timeout)
    if not ready:
        raise BenchError(f"no {expect!r} from a helper process within {timeout:.0f} s")
    reply = conn.recv()
    if reply[0] != expect:
        raise BenchError(f"expected {expect!r} from a helper process, got {reply[0]!r}")
    return reply


async def _poll(probe, until, seconds: float, what: str):
    deadline = time.monotonic() + seconds
    result = None
    while time.monotonic() < deadline:
        result = await probe()
        if until(result):
            return result
        await asyncio.sleep(0.2)
    raise BenchError(f"{what}: gave up after {seconds:.0f} s (last: {result!r})")


def _clock_of(sample: dict) -> int | None:
    return read_clock_crop(base64.b64decode(sample["y"]), sample["cw"], sample["ch"], sample["w"])


# -- one candidate --------------------------------------------------------------------

async def run_one(pw, path: str, width: int, height: int, content: str, warmup_s: float, seconds: float,
                  chromium: str = CHROMIUM, gpu: bool = False) -> Run:
    run = Run(path, width, height, content)
    mp = multiprocessing.get_context("spawn")
    clerk_conn, clerk_end = mp.Pipe()
    kiosk_conn, kiosk_end = mp.Pipe()
    clerk = mp.Process(target=clerk_proc.main, args=(clerk_end, width, height, 30.0, content), daemon=True)
    kiosk = mp.Process(target=kiosk_proc.main, args=(kiosk_end, path), daemon=True)
    clerk.start()
    kiosk.start()
    browser = None
    try:
        (_, port) = await _ask(kiosk_conn, (), "ready")
        flags = [f for f in CHROMIUM_FLAGS if not (gpu and f == "--disable-gpu")]
        browser = await pw.chromium.launch(executable_path=chromium, args=flags, headless=True)
        page = await browser.new_page(viewport=VIEWPORT)
        page.on("console", lambda msg: msg.type == "error" and run.errors.append(msg.text[:200]))
        if path != "direct":
            (_, index, offer) = await _ask(clerk_conn, ("offer",), "offer")
            (_, answer) = await _ask(kiosk_conn, ("clerk-offer", offer), "answer")
            await _ask(clerk_conn, ("answer", index, answer), "ok")
        await page.goto(f"http://127.0.0.1:{port}/?mode={path}")
        await _poll(lambda: page.evaluate("window.bench.ready"), bool, 10, f"{path}: page set-up")
        if path == "direct":
            (_, index, offer) = await _ask(clerk_conn, ("offer",), "offer")
            answer = await page.evaluate("sdp => window.bench.answer(sdp)", offer)
            await _ask(clerk_conn, ("answer", index, answer), "ok")

        async def progress():
            page_state = await page.evaluate("({frames: bench.frames, errors: bench.errors})")
            if page_state["errors"]:
                raise BenchError(f"{path}: page error {page_state['errors'][:3]}")
            if path == "baseline":
                return (await _ask(kiosk_conn, ("stats",), "stats"))[1]["decoded"]
            return page_state["frames"]

        await _poll(progress, lambda n: n >= 10, FIRST_FRAMES_TIMEOUT_S, f"{path} {run.size}: first frames")
        await asyncio.sleep(warmup_s)

        await page.evaluate("bench.reset()")
        await _ask(kiosk_conn, ("reset",), "ok")
        load0 = os.getloadavg()[0]
        kiosk0, chromium0, t0 = proc_cpu_s(kiosk.pid), chromium_cpu(), time.perf_counter()
        await asyncio.sleep(seconds)
        kiosk1, chromium1, t1 = proc_cpu_s(kiosk.pid), chromium_cpu(), time.perf_counter()
        run.page_frames = await page.evaluate("bench.frames")
        run.kiosk = (await _ask(kiosk_conn, ("stats",), "stats"))[1]
        run.seconds = t1 - t0
        run.kiosk_cpu_s = kiosk1 - kiosk0
        run.chromium_roles = _cpu_between(chromium0, chromium1)
        run.chromium_cpu_s = sum(run.chromium_roles.values())
        run.load = (load0, os.getloadavg()[0])

        total = await page.evaluate("bench.samples.length")
        for start in range(0, total, 50):
            for sample in await page.evaluate("([a, n]) => bench.collect(a, n)", [start, 50]):
                clock = _clock_of(sample)
                if clock is None or sample["t"] is None:  # t: its animation frame had not come yet
                    run.unreadable += 1
                else:
                    run.page_latency_ms.append((sample["t"] - clock + 2**31) % 2**32 - 2**31)
        run.errors += await page.evaluate("bench.errors")
    finally:
        if browser is not None:
            await browser.close()
        for conn, proc in ((kiosk_conn, kiosk), (clerk_conn, clerk)):
            try:
                conn.send(("stop",))
            except (BrokenPipeError, OSError):
                pass
            proc.join(10)
            if proc.is_alive():
                proc.kill()
                proc.join(5)
    return run


# -- reporting ------------------------------------------------------------------------

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
