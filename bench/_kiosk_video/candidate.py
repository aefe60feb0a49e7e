"""One candidate path measured once: the clerk and kiosk processes, the page in Chromium, and what was seen."""
from __future__ import annotations

import asyncio
import base64
import multiprocessing
import os
import statistics
import time

from appliance.hardware.fake.camera import read_clock_crop
from bench._common import CHROMIUM, CHROMIUM_FLAGS, BenchError, proc_cpu_s
from bench._kiosk_video import clerk as clerk_proc
from bench._kiosk_video import kiosk as kiosk_proc
from bench._kiosk_video.chromium_cpu import chromium_cpu, cpu_between

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
        run.chromium_roles = cpu_between(chromium0, chromium1)
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
