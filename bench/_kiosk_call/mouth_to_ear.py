"""Mouth-to-ear both ways in a call: a click into the kiosk's fake microphone until the clerk's page hears it, and a
click from the clerk's page until the kiosk's fake speaker plays it.

Both ends stamp with the same wall clock (the page's ``Date.now()`` and the kiosk's ``time.time()`` read the same
system clock on this machine), so no clock offset is estimated.

* kiosk -> clerk: ``SyntheticMicrophoneTrack.say()`` mixes the click into the microphone from the sample being
  "captured" at that moment; the frame holding it leaves the microphone when the frame is full, as from a sound
  card. The start is when its first sample reaches the microphone. In the page an ``AudioWorklet`` on the received
  audio track (the same track the ``<video>`` element plays) stamps ``Date.now()`` when WebAudio renders the
  quantum (128 samples) holding the click's first loud sample. Not included: the clerk's sound card output buffer.
* clerk -> kiosk: an ``AudioWorklet`` in the page sends the click instead of the clerk's microphone
  (``RTCRtpSender.replaceTrack`` for the measurement only) and stamps ``Date.now()`` when it renders the click's
  first quantum, i.e. when the click enters the browser's audio send path. Not included: the clerk's sound card
  capture buffer. The kiosk plays the clerk's audio into ``MemorySpeaker`` as the appliance plays it into its
  speaker (``appliance.service.main._play``); the end is when the speaker gets the frame plus the click's position
  in it (a device playing from an empty buffer). A real ALSA speaker adds its buffer fill (docs/benchmarks.md).

Clicks go one at a time, alternating direction, each after a random pause (so they fall at any point of a
20 ms audio frame), and each waits for its own detection (or a timeout, counted as lost).
"""
from __future__ import annotations

import asyncio
import math
import time

import numpy as np

from bench._common import note, percentile
from bench._kiosk_call.clerk_page import VIDEO_STATS_JS, window

RATE = 48000
CLICK_HZ, CLICK_S, CLICK_LEVEL = 1000.0, 0.015, 0.9  # loud and short; the kiosk's own tone peaks at 0.3
THRESHOLD = 0.55       # of full scale: above the tone (even after Opus), well below the click
REFRACTORY_S = 0.15    # one click is one detection
HEARD_TIMEOUT_S = 1.5
PAUSE_S = (0.05, 0.25)


def click() -> np.ndarray:
    t = np.arange(int(CLICK_S * RATE)) / RATE
    return CLICK_LEVEL * np.sin(2 * np.pi * CLICK_HZ * t)


class Ear:
    """The fake speaker's far-end hook in the kiosk process: calls ``on_heard(wall time)`` once per click."""

    def __init__(self, on_heard) -> None:
        self.on_heard = on_heard
        self.last = -math.inf

    def __call__(self, frame) -> None:  # each 48 kHz mono s16 frame as the speaker plays it
        now = time.time()
        loud = np.flatnonzero(np.abs(frame.to_ndarray().reshape(-1).astype(np.int32)) > THRESHOLD * 32768)
        if loud.size:
            first = now + loud[0] / RATE
            if first - self.last > REFRACTORY_S:
                self.on_heard(first)
            self.last = now + loud[-1] / RATE


_WORKLETS = """
class BenchEar extends AudioWorkletProcessor {
  constructor() { super(); this.last = -1e9; }
  process(inputs) {
    const input = inputs[0];
    if (input && input.length) {
      for (let i = 0; i < input[0].length; i++) {
        let v = 0;
        for (const ch of input) v = Math.max(v, Math.abs(ch[i]));
        if (v > THRESHOLD) {
          const t = currentTime + i / sampleRate;
          if (t - this.last > REFRACTORY) this.port.postMessage(Date.now());
          this.last = t;
        }
      }
    }
    return true;
  }
}
class BenchMouth extends AudioWorkletProcessor {
  constructor() { super(); this.pos = -1; this.pending = false; this.port.onmessage = () => { this.pending = true; }; }
  process(inputs, outputs) {
    const out = outputs[0][0];
    if (this.pending) { this.pending = false; this.pos = 0; this.port.postMessage(Date.now()); }
    const n = Math.round(LENGTH * sampleRate);
    for (let i = 0; i < out.length && this.pos >= 0; i++, this.pos++) {
      if (this.pos >= n) { this.pos = -1; break; }
      out[i] = LEVEL * Math.sin(2 * Math.PI * HZ * this.pos / sampleRate);
    }
    return true;
  }
}
registerProcessor('bench-ear', BenchEar);
registerProcessor('bench-mouth', BenchMouth);
"""

SETUP_JS = """async (code) => {
  const pc = window.amtsklingel && window.amtsklingel.pc;
  if (!pc) return 'no peer connection';
  const rx = pc.getReceivers().find((r) => r.track && r.track.kind === 'audio');
  const tx = pc.getSenders().find((s) => s.track && s.track.kind === 'audio');
  if (!rx || !tx) return 'no audio receiver or sender';
  const ctx = new AudioContext({latencyHint: 'interactive'});
  await ctx.audioWorklet.addModule(URL.createObjectURL(new Blob([code], {type: 'text/javascript'})));
  await ctx.resume();
  const m = {ctx, tx, original: tx.track, heard: [], waiter: null};
  const ear = new AudioWorkletNode(ctx, 'bench-ear');
  ctx.createMediaStreamSource(new MediaStream([rx.track])).connect(ear);
  const silent = ctx.createGain();
  silent.gain.value = 0;
  ear.connect(silent).connect(ctx.destination);  // pulled every quantum, heard by nobody
  ear.port.onmessage = (e) => { m.heard.push(e.data); if (m.waiter) m.waiter(); };
  m.mouth = new AudioWorkletNode(ctx, 'bench-mouth', {numberOfInputs: 0, outputChannelCount: [1]});
  const dest = ctx.createMediaStreamDestination();
  m.mouth.connect(dest);
  await tx.replaceTrack(dest.stream.getAudioTracks()[0]);
  window.__benchM2E = m;
  return {state: ctx.state, baseLatency: ctx.baseLatency, outputLatency: ctx.outputLatency, rate: ctx.sampleRate,
          clock: Date.now()};
}"""

CLEAR_JS = "() => { window.__benchM2E.heard.length = 0; }"

SAY_JS = """() => new Promise((resolve) => {
  const m = window.__benchM2E;
  m.mouth.port.onmessage = (e) => resolve(e.data);
  m.mouth.port.postMessage(1);
})"""

WAIT_HEARD_JS = """async ({since, timeoutMs}) => {
  const m = window.__benchM2E;
  const end = performance.now() + timeoutMs;
  while (true) {
    const t = m.heard.find((x) => x >= since);
    if (t !== undefined) return t;
    const left = end - performance.now();
    if (left <= 0) return null;
    await new Promise((r) => { m.waiter = r; setTimeout(r, left); });
    m.waiter = null;
  }
}"""

TEARDOWN_JS = """async () => {
  const m = window.__benchM2E;
  if (!m) return;
  window.__benchM2E = null;
  try { await m.tx.replaceTrack(m.original); } finally { await m.ctx.close(); }
}"""


def worklet_code() -> str:
    return (_WORKLETS.replace("THRESHOLD", repr(THRESHOLD)).replace("REFRACTORY", repr(REFRACTORY_S))
            .replace("LENGTH", repr(CLICK_S)).replace("LEVEL", repr(CLICK_LEVEL)).replace("HZ", repr(CLICK_HZ)))


async def measure(page, kiosk, clicks: int, label: str, seed: int = 11) -> dict:
    """``clicks`` clicks each way; latencies in ms (sorted) and how many were not heard."""
    rng = np.random.default_rng(seed)
    setup = await page.evaluate(SETUP_JS, worklet_code())
    if isinstance(setup, str):
        raise RuntimeError(f"clerk page: {setup}")
    skew_ms = setup["clock"] - time.time() * 1000  # the same clock: only the evaluate's round trip
    out = {"kiosk_to_clerk": [], "clerk_to_kiosk": [], "lost": {"kiosk_to_clerk": 0, "clerk_to_kiosk": 0},
           "page_audio": setup}
    s0 = await page.evaluate(VIDEO_STATS_JS)
    await kiosk_audio_timing(kiosk)  # from now on
    try:
        for _ in range(clicks):
            await page.evaluate(CLEAR_JS)
            mark = kiosk.mark()
            kiosk.command("say")
            said = (await kiosk.wait("said", mark, 5.0))[1]
            heard = await page.evaluate(WAIT_HEARD_JS, {"since": math.floor(said * 1000), "timeoutMs": HEARD_TIMEOUT_S * 1000})
            if heard is None:
                out["lost"]["kiosk_to_clerk"] += 1
            else:
                out["kiosk_to_clerk"].append(heard - said * 1000)
            await asyncio.sleep(float(rng.uniform(*PAUSE_S)))

            mark = kiosk.mark()
            said_ms = await page.evaluate(SAY_JS)
            try:
                heard_s = (await kiosk.wait("heard", mark, HEARD_TIMEOUT_S))[1]
                out["clerk_to_kiosk"].append(heard_s * 1000 - said_ms)
            except TimeoutError:
                out["lost"]["clerk_to_kiosk"] += 1
            await asyncio.sleep(float(rng.uniform(*PAUSE_S)))
        s1 = await page.evaluate(VIDEO_STATS_JS)
        out["kiosk_audio"] = await kiosk_audio_timing(kiosk)
    finally:
        await page.evaluate(TEARDOWN_JS)
    out["window"] = window(s0, s1) if s0 and s1 else None
    for key in ("kiosk_to_clerk", "clerk_to_kiosk"):
        out[key].sort()
    w, k = out["window"] or {}, out["kiosk_audio"] or {}
    note(f"  {label}: mouth-to-ear kiosk -> clerk p50 {percentile(out['kiosk_to_clerk'], 50):.0f} ms "
         f"(p95 {percentile(out['kiosk_to_clerk'], 95):.0f}, {len(out['kiosk_to_clerk'])} clicks, "
         f"{out['lost']['kiosk_to_clerk']} lost), clerk -> kiosk p50 {percentile(out['clerk_to_kiosk'], 50):.0f} ms "
         f"(p95 {percentile(out['clerk_to_kiosk'], 95):.0f}, {len(out['clerk_to_kiosk'])} clicks, "
         f"{out['lost']['clerk_to_kiosk']} lost); page clock - ours {skew_ms:+.0f} ms; clerk audio jitter buffer "
         f"{_ms(w.get('audio_jitter_buffer_ms'))} (target {_ms(w.get('audio_target_ms'))}, arrival jitter "
         f"{_ms(w.get('audio_arrival_jitter_ms'))}), clerk audio output {_ms(w.get('audio_playout_ms'))}; "
         f"kiosk (p50/p95/max): " + ", ".join(f"{key} {v['p50']:.1f}/{v['p95']:.1f}/{v['max']:.1f}"
                                              for key, v in k.items()) + f"; page audio {setup}")
    return out


def _ms(value) -> str:
    return "-" if value is None else f"{value:.0f} ms"


async def kiosk_audio_timing(kiosk) -> dict | None:
    mark = kiosk.mark()
    kiosk.command("audio_timing")
    return (await kiosk.wait("audio_timing", mark, 5.0))[1]
