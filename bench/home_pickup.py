"""A visit from home: from the clerk's pick-up to the first frame, both ways, in real Chromium pages.

Central runs as its own process; a clerk's console and a citizen's page at home (/visit/buergerbuero,
Chromium's fake camera and microphone) are pages of one headless Chromium over loopback, so the times
include everything a clerk and a citizen wait for: the pick-up message, call.start, the page's offer,
the console's answer (after opening its own camera), ICE on loopback, the first decoded frame. Each
round is a fresh visit from an address of its own (X-Forwarded-For through 127.0.0.1 as a trusted proxy:
central limits visit requests per address).

    home_pickup_first_frame_ms           pick-up click -> the citizen's first frame at the clerk (median;
                                         target <= 400)
    home_pickup_first_frame_ms.at_home   pick-up click -> the clerk's first frame at the citizen's page
    home_pickup_first_frame_ms.max       the slowest round, clerk side

``measure(server_url, creds, rounds)`` is the measurement on its own, for other benchmarks (three_way).
"""
from __future__ import annotations

import asyncio
import statistics

import aiohttp

from bench._central import Server
from bench._common import CHROMIUM, CHROMIUM_FLAGS, BenchError, emit, note, run_in_tmp

NAME = "home_pickup"
DEPARTMENT = "buergerbuero"
TIMEOUT_MS = 30_000

# On a page: when the next frame of the <video> is presented (ms on the shared wall clock), kept in window.__first.
WATCH_FIRST_FRAME_JS = """(selector) => {
  window.__first = null;
  const v = document.querySelector(selector);
  const seen = (at) => { if (window.__first === null) window.__first = at; };
  const onFrame = (now) => seen(performance.timeOrigin + now);
  if (v.requestVideoFrameCallback) v.requestVideoFrameCallback(onFrame);
  v.addEventListener('loadeddata', () => seen(performance.timeOrigin + performance.now()), { once: true });
}"""
PICK_UP_JS = """(selector) => {
  const at = performance.timeOrigin + performance.now();
  document.querySelector(selector).click();
  return at;
}"""


def add_arguments(parser) -> None:
    parser.add_argument("--home-rounds", type=int, default=None,
                        help="home_pickup: visits picked up (default 10; 3 with --quick)")


async def _home_waiting(browser, url: str, address: str):
    # Central takes the citizen's address from the proxy's X-Forwarded-For (trusted_proxies): each round's
    # citizen comes from an address of their own, as citizens at home do.
    context = await browser.new_context(permissions=["camera", "microphone"], viewport={"width": 390, "height": 844},
                                        extra_http_headers={"X-Forwarded-For": address})
    page = await context.new_page()
    await page.goto(f"{url}/visit/{DEPARTMENT}?lang=de")
    await page.click("[data-testid=notice-ok]")
    await page.locator("[data-testid=start]:enabled").wait_for(timeout=TIMEOUT_MS)
    await page.click("[data-testid=start]")
    try:
        await page.locator("[data-testid=waiting]").wait_for(timeout=TIMEOUT_MS)
    except Exception as exc:
        raise BenchError(f"the citizen did not get into the waiting room: "
                         f"{await page.locator('[data-testid=problem]').inner_text()!r}") from exc
    return context, page


async def _first_frame(page) -> float:
    """When the watched video showed its first frame (polled: the pages' CSP forbids wait_for_function's eval)."""
    for _ in range(TIMEOUT_MS // 20):
        if (at := await page.evaluate("() => window.__first")) is not None:
            return at
        await asyncio.sleep(0.02)
    raise BenchError(f"no frame within {TIMEOUT_MS} ms of the pick-up on {page.url}")


async def measure(url: str, creds: dict, rounds: int) -> tuple[list[float], list[float]]:
    """(ms at the clerk, ms at home) per round: pick-up click to the first frame shown.

    Central at ``url`` must trust 127.0.0.1 as a proxy (``trusted_proxies``): each round's citizen then has an
    address of its own (X-Forwarded-For), and central's limits per address do not slow the rounds down."""
    from playwright.async_api import async_playwright

    at_clerk, at_home = [], []
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True)
        clerk = await (await browser.new_context(permissions=["camera", "microphone"])).new_page()
        await clerk.goto(f"{url}/login")
        await clerk.fill("input[name=username]", creds["clerk_user"])
        await clerk.fill("input[name=password]", creds["clerk_password"])
        await clerk.click("button[type=submit]")
        await clerk.locator("[data-testid=connection-state][data-state=connected]").wait_for(timeout=TIMEOUT_MS)
        for n in range(rounds):
            context, home = await _home_waiting(browser, url, f"198.51.100.{1 + n % 250}")
            row = clerk.locator("[data-testid=visit-row] [data-testid=pickup-button]")
            await row.wait_for(timeout=TIMEOUT_MS)
            await clerk.evaluate(WATCH_FIRST_FRAME_JS, "#remote-video")
            await home.evaluate(WATCH_FIRST_FRAME_JS, "#remote-video")
            clicked = await clerk.evaluate(PICK_UP_JS, "[data-testid=visit-row] [data-testid=pickup-button]")
            at_clerk.append(await _first_frame(clerk) - clicked)
            at_home.append(await _first_frame(home) - clicked)
            marks = await home.evaluate("() => window.amtsklingelHome.marks")
            steps = ", ".join(f"{name} {marks[name] - clicked:.0f}" for name in ("start", "offer", "answer", "connected")
                              if name in marks)
            note(f"home_pickup: round {n + 1}: first frame at the clerk {at_clerk[-1]:.0f} ms, "
                 f"at home {at_home[-1]:.0f} ms (the page's steps after the click, ms: {steps})")
            await clerk.click("[data-testid=hangup-button]")
            await home.locator("[data-testid=ended]").wait_for(timeout=TIMEOUT_MS)
            await clerk.locator("[data-testid=call-view]").wait_for(state="hidden", timeout=TIMEOUT_MS)
            await context.close()
        await browser.close()
    return at_clerk, at_home


async def _main(tmp, args) -> int:
    rounds = args.home_rounds or (3 if args.quick else 10)
    if rounds < 1:
        raise BenchError("--home-rounds must be at least 1")
    server = Server(tmp, 'trusted_proxies = ["127.0.0.1"]\n')
    creds = server.demo_data()
    server.start()
    try:
        async with aiohttp.ClientSession() as session:
            await server.wait_ready(session)
        at_clerk, at_home = await measure(server.url, creds, rounds)
    finally:
        server.stop()
    note(f"home_pickup: {rounds} visits from home picked up; first frame at the clerk median "
         f"{statistics.median(at_clerk):.0f} ms (max {max(at_clerk):.0f}), at home {statistics.median(at_home):.0f} ms")
    emit("home_pickup_first_frame_ms", statistics.median(at_clerk), "ms")
    emit("home_pickup_first_frame_ms.at_home", statistics.median(at_home), "ms")
    emit("home_pickup_first_frame_ms.max", max(at_clerk), "ms")
    return 0


def run(args) -> int:
    return run_in_tmp(NAME, lambda tmp: _main(tmp, args), "amtsklingel-home-pickup-")
