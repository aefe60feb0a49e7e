"""Kiosk <-> clerk call: pick-up -> first frame, appliance CPU per codec, glass-to-glass, frame rate.

What is measured
----------------
One central (in this process, as in ``tests/central/conftest.py``: demo data,
SQLite in a temporary directory, 127.0.0.1), one Chromium clerk (Debian's
``/usr/bin/chromium``, headless, driven by Playwright, logged in to the real
console at ``/console``) and one kiosk in a process of its own: a scripted
kiosk like ``appliance.sim.kiosk.SimulatedKiosk`` that speaks to central with
``CentralLink`` and makes its calls with the appliance's ``CallPeer``. The kiosk
sends the 1280x720@30 test pattern (``TestPatternTrack``, with its clock) in one
of three ways:

* ``vp8``: frames through aiortc's VP8 encoder (what a kiosk without a hardware
  encoder, e.g. a Pi 5, sends; ``CallPeer`` without codec preferences);
* ``h264``: frames through aiortc's H.264 encoder (libx264), H.264 pinned with
  ``h264_codecs()``;
* ``passthrough``: the Pi 4 path. ``EncodedVideoTrack`` gets H.264 access units
  from ``FakeH264Encoder`` (the libx264 stand-in for the Pi's hardware encoder,
  1.5 Mbit/s, IDR + SPS/PPS every second, baseline, as ``hardware.pi.camera``
  configures the real one). The stand-in runs in a *third* process and hands
  each access unit over a pipe to a thread of the kiosk process that calls
  ``track.put()``, as picamera2's encoder thread does. So the kiosk process's
  CPU is what a Pi 4 spends (the hardware encoder costs it nothing); the
  stand-in's own CPU is reported separately and is not part of the kiosk figure.

1. **Pick-up -> first decoded frame** (``--kc-calls`` calls per mode in
   ``--kc-pickup-modes``, after one unreported warm-up call). The kiosk asks
   for a visit; when its row is in the console, one ``page.evaluate`` clicks the
   row's pick-up button (t0 = ``performance.now()`` just before the click, whose
   handler sends ``visit.pickup``) and then polls ``getStats()`` every 10 ms until
   the inbound video's ``framesDecoded > 0``, and waits for the first
   ``requestVideoFrameCallback`` of ``#remote-video``. Both are upper bounds of
   the moment the first frame was decoded: the poll's time is taken when that
   ``getStats()`` resolved (which under load takes tens of ms), the callback's
   ``presentationTime`` is when the decoded frame went to the compositor. The
   figure reported as "clerk decoded" is the earlier of the two; each is also
   printed on its own. The kiosk side ends when the first complete encoded frame
   of the clerk's (fake-device) video comes out of the kiosk's receiver, where
   the appliance takes it for the page (appliance/kiosk/video_feed.py; the page's
   WebCodecs decode adds ~11 ms, bench kiosk_video_path); with
   ``--kc-kiosk-video decoded`` when aiortc hands out its first decoded frame
   instead (the appliance's fallback). It is stamped with
   ``time.time()`` in the kiosk process and compared with t0 converted to the
   same clock: the offset between ``performance.timeOrigin + performance.now()``
   and ``time.time()`` is measured before each call (the ``page.evaluate`` round
   trip with the smallest duration of 15, midpoint; its half-width is printed).
   Then the clerk hangs up and the kiosk goes idle again. Every call (the warm-ups and the
   streaming calls too) comes from a fresh kiosk: central allows one kiosk 3 visit requests in
   quick succession, then one per 20 s (VISIT_REQUESTS, central/live/limits.py), and a real kiosk
   carries one citizen at a time. The kiosk process connects as the next kiosk before it asks
   (``bench/_kiosk_call/kiosk.py``), outside every measured interval.

2. **Appliance CPU per minute of call**, per mode, two variants:
   *call*: the whole call as the appliance runs it (video + Opus audio out; the
   clerk's audio received and decoded by aiortc, the clerk's video taken from the
   receiver still encoded, as the appliance does, both counted and thrown away;
   serving the picture to the kiosk page and its decoding there are measured
   separately, bench kiosk_video_path);
   *video only*: the kiosk's video transceiver set to ``sendonly`` and no audio
   track, so the clerk's answer sends nothing back: the sending path alone.
   CPU = utime + stime of the kiosk process (``/proc/<pid>/stat``, all threads)
   over ``--kc-seconds`` of streaming after ``--kc-warmup`` seconds, scaled to
   60 s. The ratios passthrough / live H.264 and passthrough / VP8 are printed.

3. **Glass-to-glass** kiosk -> clerk (both variants, every mode, after the CPU
   window): for ``--kc-g2g-seconds``, frames are grabbed from the clerk page's ``<video>``
   (``drawImage`` of the top 160 rows into a canvas, converted to luma in the
   page) at random moments; ``read_clock`` reads the test pattern's stamp
   (``time.time()`` when the kiosk, or for passthrough the stand-in encoder,
   drew the picture) and the page's clock at ``drawImage`` (converted with the
   measured offset) minus the stamp is the latency. Grabs land at any moment
   of a frame's display, so the figures include on average half a frame
   interval (~17 ms) of display time, as a camera filming a screen would.
   Excluded: a real camera's exposure and readout, and the display's scan-out.
   aiortc puts a peer connection's audio and video into one media stream, so in
   the *call* variant Chromium holds the video back to play it in sync with the
   kiosk's audio (lip sync): the call figure includes that wait, the
   *video only* figure is the video path alone. The clerk's jitter-buffer
   figures (video and audio) of the grabbing window are printed to show it.

4. **Sustained received frame rate** at the clerk: the inbound video's
   ``framesDecoded`` delta over the ``getStats`` timestamps of the CPU window
   (``--kc-seconds``, no frame grabbing then). Dropped/frozen frames and the
   jitter-buffer and decode delays of the window are printed too.

5. **Mouth-to-ear** both ways (every call with audio, after glass-to-glass; ``--kc-clicks`` each way):
   a click into the kiosk's fake microphone until the clerk's page hears it on the received track
   (an AudioWorklet), and a click sent from the clerk's page until the kiosk's fake speaker plays it,
   both stamped on the machine's wall clock (``bench/_kiosk_call/mouth_to_ear.py`` says what each end
   includes). The clerk's audio jitter buffer of the window is printed with it. The headline figures
   ``mouth_to_ear_ms.{kiosk_to_clerk,clerk_to_kiosk}.p50`` are the passthrough call's.

Every figure is printed as a JSON line (``kiosk_call.*``). Machine context is
printed with each window: the CPU of the clerk's Chromium (all its processes)
and how busy the whole machine was, because on a small machine the kiosk,
Chromium and anything else running share the cores.

Nothing leaves loopback (run inside ``tools/netns-run``): central's ICE server
list is empty, so no STUN/TURN server is ever asked; every wait is bounded.

The parts are in ``bench/_kiosk_call/``: ``kiosk.py`` (the kiosk process), ``standin_encoder.py``
(the Pi 4 encoder's stand-in), ``kiosk_process.py`` (this process's handle on the kiosk),
``clerk_page.py`` (what runs in the console page), ``mouth_to_ear.py``, ``cpu.py``, ``measurements.py`` and
``report.py``.
"""
from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from bench._common import CHROMIUM, CHROMIUM_FLAGS, BenchError, note, run_in_tmp
from bench._kiosk_call import MODES, NAME
from bench._kiosk_call.kiosk_process import KioskProcess
from bench._kiosk_call.measurements import Bench
from bench._kiosk_call.report import report
from bench._limits import KioskPlan, RateLimited


async def _run(args, tmp: Path) -> int:
    from aiohttp import web
    from playwright.async_api import async_playwright

    from central.app import create_app
    from central.config import Config
    from central.seed import seed_demo

    app = create_app(Config(database_url=f"sqlite:///{tmp}/central.db", secure_cookies=False))
    runner = web.AppRunner(app, shutdown_timeout=1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"
    credentials = await seed_demo(app["db"])
    app["hub"].set_departments(await app["db"].departments())
    if app["config"].ice_servers or app["config"].turn_urls:
        raise BenchError("central has ICE servers configured; this benchmark must not use any")
    note(f"central on {url}")
    kiosk = None
    try:
        kiosk = KioskProcess(url, credentials["kiosk_token"])
        await kiosk.start()
        note(f"kiosk process {kiosk.pid}, stand-in encoder process {kiosk.encoder_pid}")
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS,
                                               ignore_default_args=["--mute-audio"], headless=True)
            try:
                # bypass_csp: the mouth-to-ear measurement loads its AudioWorklet from a blob: URL, which the
                # console's policy (scripts from central only) rightly refuses; the console itself is unchanged.
                context = await browser.new_context(permissions=["camera", "microphone", "notifications"],
                                                    bypass_csp=True)
                page = await context.new_page()
                await page.goto(url + "/login")
                await page.fill("input[name=username]", credentials["clerk_user"])
                await page.fill("input[name=password]", credentials["clerk_password"])
                await page.click("button[type=submit]")
                await page.wait_for_url("**/console")
                await page.locator("[data-testid=connection-state][data-state=connected]").wait_for()
                kiosks = 0

                async def new_kiosk() -> str:
                    nonlocal kiosks
                    kiosks += 1
                    return (await app["db"].create_kiosk(f"Bench call kiosk {kiosks:03d}"))[1]

                bench = Bench(args, url, credentials, kiosk, page, new_kiosk)
                for mode in args.kc_pickup_modes:
                    note(f"pick-up -> first frame, {mode}: {args.kc_calls} calls + 1 warm-up")
                    await bench.pickup(mode, args.kc_calls)
                for mode in args.kc_stream_modes:
                    for full in (True, False):
                        note(f"streaming {mode} {'call' if full else 'video only'}: {args.kc_warmup:g} s warm-up, "
                             f"{args.kc_seconds:g} s CPU/fps, {args.kc_g2g_seconds:g} s glass-to-glass")
                        try:
                            bench.results["stream"][(mode, full)] = await bench.stream(mode, full)
                        except RateLimited:
                            raise
                        except BenchError as exc:
                            note(f"  {exc}")
                            bench.results["stream"][(mode, full)] = str(exc)
                return report(bench, args)
            finally:
                await browser.close()
    finally:
        if kiosk is not None:
            kiosk.stop()
        await runner.cleanup()


def _modes(text: str) -> list[str]:
    modes = [m for m in text.split(",") if m]
    bad = set(modes) - set(MODES)
    if bad:
        raise ValueError(f"unknown mode(s) {', '.join(sorted(bad))}; known: {', '.join(MODES)}")
    return modes


def add_arguments(parser) -> None:
    group = parser.add_argument_group(NAME)
    group.add_argument("--kc-calls", type=int, default=None,
                       help="measured pick-ups per mode, after one warm-up (default 20; 5 with --quick)")
    group.add_argument("--kc-pickup-modes", type=_modes, default=["vp8", "passthrough"],
                       help="kiosk video for the pick-up calls (default vp8,passthrough; of vp8,h264,passthrough)")
    group.add_argument("--kc-stream-modes", type=_modes, default=list(MODES),
                       help="modes streamed for CPU, frame rate and glass-to-glass (default vp8,h264,passthrough)")
    group.add_argument("--kc-warmup", type=float, default=None, help="seconds of each call before measuring (default 4; 2 with --quick)")
    group.add_argument("--kc-seconds", type=float, default=None, help="CPU and frame-rate window (default 25 s; 8 with --quick)")
    group.add_argument("--kc-g2g-seconds", type=float, default=None, help="glass-to-glass grabbing (default 10 s; 4 with --quick)")
    group.add_argument("--kc-clicks", type=int, default=None,
                       help="mouth-to-ear clicks each way in each call with audio (default 20; 8 with --quick)")
    group.add_argument("--kc-kiosk-video", choices=("encoded", "decoded"), default="encoded",
                       help="the clerk's picture in the kiosk process: taken encoded for the page to decode, as the "
                            "appliance does (default), or decoded by aiortc (the fallback when the tap fails)")


def kiosk_plan(args) -> KioskPlan:
    """One visit request per kiosk, and one connection (the kiosk process switches kiosks per call)."""
    return KioskPlan(visit_requests_per_s=0.0, visit_burst=1)


def run(args) -> int:
    quick = args.quick
    for name, full, short in (("kc_calls", 20, 5), ("kc_warmup", 4.0, 2.0), ("kc_seconds", 25.0, 8.0),
                              ("kc_g2g_seconds", 10.0, 4.0), ("kc_clicks", 20, 8)):
        if getattr(args, name) is None:
            setattr(args, name, short if quick else full)
    if args.kc_calls < 1 or args.kc_seconds <= 0:
        note(f"{NAME}: --kc-calls must be >= 1 and --kc-seconds > 0")
        return 2
    if os.environ.get("AMTSKLINGEL_NETNS") != "1":
        note(f"{NAME}: WebRTC gathers candidates on every interface; run inside tools/netns-run (./build.sh bench)")
        return 2
    if not shutil.which(CHROMIUM):
        note(f"{NAME}: {CHROMIUM} is missing (Debian's chromium package)")
        return 2
    return run_in_tmp(NAME, lambda tmp: _run(args, tmp), "amtsklingel-kiosk-call-")


if __name__ == "__main__":
    from bench.__main__ import main as _main

    sys.exit(_main(["--only", NAME, *sys.argv[1:]]))
