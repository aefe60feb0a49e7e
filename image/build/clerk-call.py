#!/usr/bin/env python3
"""The boot test's clerk: Chromium (Playwright, /usr/bin/chromium) on the host side of the town hall's
network, logged in to central's staff console, picks up the guest's visit and judges what arrives.

    clerk-call.py --console LOG --central URL --credentials DEMO.json [--timeout S] [--work DIR]

Follows the serial console LOG: when the guest's self-test says ``INFO call-waiting`` the clerk picks
up; the self-test then announces its phases (``INFO call-phase: clerk-talks | citizen-talks |
camera-unplug | hangup``). The clerk speaks all the time (a speech-like voice as Chromium's fake
microphone: appliance/selftest/speech.py), samples the call's statistics every half
second and grabs the kiosk's picture. Prints for the boot test's results (exit 0 if all pass):
  v4l2-camera-call     moving video at the clerk, while the guest's appliance held vivid's node
  alsa-loopback-audio  both ways through the guest's ALSA: the citizen's voice (played into the
                       loopback card in the guest) louder at the clerk than the echo of their own,
                       and the guest's alsa-clerk-to-kiosk check passed
and ``INFO camera-unplug-at-clerk`` (the console's note when vivid goes away).
"""
from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import math
import re
import signal
import sys
import time
import wave
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE / "selftest"))
sys.path.insert(0, str(REPO))

TAG = "AMTSKLINGEL-SELFTEST"
CENTRAL_HOST = "central.amtsklingel.test"
PHASE = re.compile(rf"{TAG} INFO call-phase: ([a-z-]+)")
CITIZEN_OVER_ECHO_DB = 10.0   # the citizen's voice must stand out from what is left of the clerk's echo
CITIZEN_MIN_DBFS = -50.0
SETTLE_S = 3.0                # a phase's first seconds at the clerk are still the previous one's sound

STATS_JS = """async () => {
  const pc = window.amtsklingel && window.amtsklingel.pc;
  if (!pc) return null;
  const out = {}, sent = {};
  (await pc.getStats()).forEach(r => {
    if (r.type === 'inbound-rtp') out[r.kind] = r;
    if (r.type === 'outbound-rtp') sent[r.kind] = r.packetsSent || 0;
  });
  return {connection: pc.connectionState, ice: pc.iceConnectionState, sent_audio: sent.audio || 0,
          video: out.video ? {frames: out.video.framesDecoded || 0, width: out.video.frameWidth || 0,
                              height: out.video.frameHeight || 0, codec: out.video.codecId || ''} : null,
          audio: out.audio ? {energy: out.audio.totalAudioEnergy || 0,
                              duration: out.audio.totalSamplesDuration || 0} : null};
}"""
# The clerk's own picture is not judged here, but the guest's emulated CPU has to receive it: a small one
# (the fake camera's 640x480 at 30 fps takes CPU time the call's own work needs, its ICE checks among it).
SMALL_PICTURE_JS = """async () => {
  const pc = window.amtsklingel && window.amtsklingel.pc;
  const sender = pc && pc.getSenders().find(s => s.track && s.track.kind === 'video');
  if (!sender) return false;
  const p = sender.getParameters();
  if (!p.encodings || !p.encodings.length) return false;
  Object.assign(p.encodings[0], {maxBitrate: 100000, maxFramerate: 5, scaleResolutionDownBy: 2});
  await sender.setParameters(p);
  return true;
}"""
PICTURE_JS = """() => {
  const v = document.querySelector('#remote-video');
  if (!v || v.videoWidth === 0) return null;
  const c = document.createElement('canvas'); c.width = 64; c.height = 48;
  const g = c.getContext('2d', { willReadFrequently: true }); g.drawImage(v, 0, 0, 64, 48);
  return Array.from(g.getImageData(0, 0, 64, 48).data.filter((_, i) => i % 4 === 1));
}"""


def say(status: str, name: str, detail: str) -> str:
    line = f"{TAG} {status} {name}: {detail}"
    print(line, flush=True)
    return line


class Console:
    """The guest's serial console, read as it grows: phase changes with the time the clerk saw them."""

    def __init__(self, path: Path) -> None:
        self.path, self.seen, self.phases = path, 0, []  # phases: (monotonic time, name)
        self.lines: list[str] = []

    def poll(self) -> None:
        try:
            text = self.path.read_bytes().decode(errors="replace")
        except OSError:
            return
        for line in text.splitlines()[self.seen:]:
            line = line.strip("\r")
            if TAG in line:
                line = line[line.index(TAG):]
                self.lines.append(line)
                found = PHASE.search(line)
                if found:
                    self.phases.append((time.monotonic(), found.group(1)))
        self.seen = len(text.splitlines())

    def has(self, fragment: str) -> str | None:
        return next((line for line in self.lines if fragment in line), None)


def level_dbfs(samples: list[dict], start: float, end: float) -> float | None:
    """The clerk's received audio level between two moments, from totalAudioEnergy/totalSamplesDuration."""
    inside = [s for s in samples if start <= s["t"] < end and s.get("audio")]
    if len(inside) < 2:
        return None
    energy = inside[-1]["audio"]["energy"] - inside[0]["audio"]["energy"]
    duration = inside[-1]["audio"]["duration"] - inside[0]["audio"]["duration"]
    if duration <= 0:
        return None
    return 10 * math.log10(energy / duration) if energy > 0 else -math.inf


def phase_window(phases: list[tuple[float, str]], name: str, settle_s: float = SETTLE_S) -> tuple[float, float] | None:
    """When the guest's phase ``name`` ran as the clerk saw it: from its line (plus settling) to the next."""
    for i, (at, found) in enumerate(phases):
        if found == name:
            end = phases[i + 1][0] if i + 1 < len(phases) else math.inf
            return at + settle_s, end
    return None


def judge_audio(samples: list[dict], phases: list[tuple[float, str]], guest_line: str | None) -> tuple[bool, str]:
    clerk, citizen = phase_window(phases, "clerk-talks", settle_s=10.0), phase_window(phases, "citizen-talks")
    echo = level_dbfs(samples, *clerk) if clerk else None
    voice = level_dbfs(samples, *citizen) if citizen else None
    fmt = lambda x: "none" if x is None else f"{x:.1f}"  # noqa: E731
    guest_ok = bool(guest_line) and f"{TAG} PASS alsa-clerk-to-kiosk" in guest_line
    ok = (guest_ok and voice is not None and echo is not None and voice >= CITIZEN_MIN_DBFS
          and voice - echo >= CITIZEN_OVER_ECHO_DB)
    return ok, (f"kiosk -> clerk: the citizen's voice at the clerk {fmt(voice)} dBFS, while only the clerk spoke "
                f"{fmt(echo)} dBFS (>= {CITIZEN_OVER_ECHO_DB:.0f} dB apart wanted); clerk -> kiosk: "
                f"{guest_line.split(': ', 1)[1] if guest_line else 'no word from the guest'}")


def connection_course(samples: list[dict], since: float) -> str:
    """The clerk's peer connection as it went (seconds after the pick-up), and the voice it sent."""
    course, last = [], None
    for s in samples:
        state = f"{s.get('connection')}/ice {s.get('ice')}"
        if state != last:
            course.append(f"{s['t'] - since:.0f} s {state}")
            last = state
    sent = max((s.get("sent_audio", 0) for s in samples), default=0)
    return f"{', '.join(course) or 'no statistics'}; the clerk's voice: {sent} audio packets sent"


def judge_video(samples: list[dict], pictures: list[tuple[float, str]], guest_line: str | None) -> tuple[bool, str]:
    frames = [s["video"]["frames"] for s in samples if s.get("video")]
    decoded = (frames[-1] - frames[0]) if frames else 0
    sizes = {f"{s['video']['width']}x{s['video']['height']}" for s in samples if s.get("video") and s["video"]["width"]}
    distinct = len({digest for _, digest in pictures})
    held = guest_line or ""
    from_v4l2 = bool(re.search(r"holds .*/dev/video\d+ \(vivid", held))
    ok = decoded >= 10 and distinct >= 3 and from_v4l2
    return ok, (f"{decoded} frames decoded ({', '.join(sorted(sizes)) or 'no size'}), {distinct} different pictures "
                f"of {len(pictures)} grabbed; the guest: {held.split(': ', 1)[1] if held else 'no word of its devices'}")


def write_voice(path: Path, seconds: float = 30.0) -> Path:
    from loopback_audio import to_s16

    from appliance.selftest.speech import RATE, speech_like, with_peak

    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(to_s16(with_peak(speech_like(seconds, seed=5), 0.5)).tobytes())
    return path


async def run(args) -> int:
    from playwright.async_api import async_playwright

    from tests.browser import CHROMIUM, WEBRTC_FLAGS

    creds, voice = args.creds, args.voice
    origin = f"http://{CENTRAL_HOST}:{args.port}"
    # Its own address in its candidates, not an mDNS name: the kiosk cannot resolve those, and the
    # kiosk's firewall lets in only what answers its own checks.
    flags = WEBRTC_FLAGS + [f"--use-file-for-fake-audio-capture={voice}", "--disable-features=WebRtcHideLocalIpsWithMdns",
                            f"--unsafely-treat-insecure-origin-as-secure={origin}"]
    if args.resolve:
        flags.append(f"--host-resolver-rules=MAP {CENTRAL_HOST} {args.resolve}")
    console = Console(Path(args.console))
    deadline = time.monotonic() + args.timeout
    samples: list[dict] = []
    pictures: list[tuple[float, str]] = []
    note = None
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=flags, headless=True)
        page = await (await browser.new_context(permissions=["camera", "microphone", "notifications"])).new_page()
        await page.goto(origin + "/login")
        await page.fill("input[name=username]", creds["clerk_user"])
        await page.fill("input[name=password]", creds["clerk_password"])
        await page.click("button[type=submit]")
        await page.wait_for_url("**/console")
        await page.locator("[data-testid=connection-state][data-state=connected]").wait_for(timeout=120_000)
        while not console.has("INFO call-waiting") and time.monotonic() < deadline:
            if console.has(f"{TAG} DONE"):
                say("INFO", "clerk", "the self-test ended without a call")
                await browser.close()
                return 1
            await asyncio.sleep(1)
            console.poll()
        pickup = page.locator("[data-testid=visit-row] [data-testid=pickup-button]").first
        await pickup.wait_for(timeout=max(1, deadline - time.monotonic()) * 1000)
        await pickup.click()
        await page.locator("[data-testid=call-view]").wait_for(timeout=120_000)
        say("INFO", "clerk-picked-up", f"{origin}/console as {creds['clerk_user']}")
        picked_up = time.monotonic()
        small_picture = False
        last_picture = 0.0
        stop = asyncio.Event()  # the boot test ends the clerk (SIGTERM) when the guest stopped
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        call_view = page.locator("[data-testid=call-view]")
        while (time.monotonic() < deadline and not stop.is_set() and not console.has("INFO call-ended")
               and not console.has(f"{TAG} DONE") and await call_view.is_visible()):
            console.poll()
            if not small_picture:
                small_picture = await page.evaluate(SMALL_PICTURE_JS)
            stats = await page.evaluate(STATS_JS)
            if stats:
                samples.append({"t": time.monotonic()} | stats)
            if time.monotonic() - last_picture > 2.0 and not any(p == "camera-unplug" for _, p in console.phases):
                luma = await page.evaluate(PICTURE_JS)
                if luma:
                    pictures.append((time.monotonic(), hashlib.sha1(bytes(luma)).hexdigest()))
                last_picture = time.monotonic()
            kiosk_note = page.locator("[data-testid=kiosk-note]")
            if note is None and await kiosk_note.is_visible():
                note = await kiosk_note.text_content()
            await asyncio.sleep(0.5)
        if await call_view.is_visible():
            await page.click("[data-testid=hangup-button]")
        await browser.close()
    say("INFO", "clerk-connection", connection_course(samples, picked_up))
    video_ok, video = judge_video(samples, pictures, console.has("INFO call-devices"))
    audio_ok, audio = judge_audio(samples, console.phases, console.has("alsa-clerk-to-kiosk"))
    say("PASS" if video_ok else "FAIL", "v4l2-camera-call", video)
    say("PASS" if audio_ok else "FAIL", "alsa-loopback-audio", audio)
    say("INFO", "camera-unplug-at-clerk", f"the console's note: {note!r}")
    return 0 if video_ok and audio_ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--console", required=True)
    parser.add_argument("--central", required=True, help="central's address as the clerk reaches it (http://IP:PORT)")
    parser.add_argument("--credentials", required=True)
    parser.add_argument("--timeout", type=float, default=1800)
    parser.add_argument("--work", default=".", help="where the clerk's voice file is written")
    args = parser.parse_args()
    central = re.match(r"https?://([^:/]+)(?::(\d+))?", args.central)
    if not central:
        parser.error(f"--central {args.central!r} is not http://HOST:PORT")
    args.resolve, args.port = central.group(1), central.group(2) or "80"
    args.creds = json.loads(Path(args.credentials).read_text())
    args.voice = write_voice(Path(args.work) / "clerk-voice.wav")
    try:
        return asyncio.run(run(args))
    except Exception as exc:  # noqa: BLE001 - the boot test's log says why the clerk gave up
        say("FAIL", "v4l2-camera-call", f"the clerk gave up: {type(exc).__name__}: {str(exc)[:300]}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
