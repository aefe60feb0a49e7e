"""What the benchmark runs in the clerk's console page (pick-up, video statistics, frame grabs), the page's
clock against this process's, and the figures of one window between two statistics snapshots."""
from __future__ import annotations

import math
import time

PAGE_CLOCK_JS = "() => performance.timeOrigin + performance.now()"

PICKUP_JS = """async ({visitId, timeoutMs, pollMs}) => {
  const button = document.querySelector(
    `[data-testid=visit-row][data-visit-id="${visitId}"] [data-testid=pickup-button]`);
  if (!button || button.disabled) return {error: 'pick-up button missing or disabled'};
  const video = document.querySelector('#remote-video');
  const out = {origin: performance.timeOrigin};
  let handle = 0;
  const presented = new Promise((resolve) => {
    handle = video.requestVideoFrameCallback((now, meta) => resolve(meta));
  });
  const t0 = performance.now();
  button.click();  // its handler sends visit.pickup on the console's WebSocket
  out.t0 = t0;
  while (performance.now() - t0 < timeoutMs) {
    const pc = window.amtsklingel.pc;
    if (pc) {
      if (out.assigned === undefined) out.assigned = performance.now() - t0;
      if (out.connected === undefined && pc.connectionState === 'connected') out.connected = performance.now() - t0;
      const report = await pc.getStats();
      const seen = performance.now();
      let v = null;
      report.forEach((r) => { if (r.type === 'inbound-rtp' && r.kind === 'video') v = r; });
      if (v && v.framesDecoded > 0) { out.decoded = seen - t0; break; }
    }
    await new Promise((r) => setTimeout(r, pollMs));
  }
  if (out.decoded === undefined) {
    video.cancelVideoFrameCallback(handle);
    out.error = 'no decoded video frame';
    return out;
  }
  const meta = await Promise.race([presented, new Promise((r) => setTimeout(() => r(null), 3000))]);
  if (meta) {
    out.presented = meta.presentationTime - t0;
    out.width = meta.width; out.height = meta.height;
  } else {
    video.cancelVideoFrameCallback(handle);
  }
  return out;
}"""

VIDEO_STATS_JS = """async () => {
  const pc = window.amtsklingel && window.amtsklingel.pc;
  if (!pc) return null;
  let v = null, a = null, playout = null, codecs = {};
  (await pc.getStats()).forEach((r) => {
    if (r.type === 'inbound-rtp' && r.kind === 'video') v = r;
    if (r.type === 'inbound-rtp' && r.kind === 'audio') a = r;
    if (r.type === 'media-playout') playout = r;
    if (r.type === 'codec') codecs[r.id] = r.mimeType;
  });
  if (!v) return null;
  const keys = ['timestamp', 'framesDecoded', 'framesReceived', 'framesDropped', 'freezeCount',
                'totalFreezesDuration', 'frameWidth', 'frameHeight', 'jitterBufferDelay',
                'jitterBufferTargetDelay', 'jitterBufferMinimumDelay', 'jitterBufferEmittedCount',
                'totalDecodeTime', 'totalProcessingDelay', 'bytesReceived', 'packetsLost', 'nackCount',
                'pliCount', 'keyFramesDecoded'];
  const out = {codec: codecs[v.codecId] || null, decoder: v.decoderImplementation || null};
  for (const k of keys) out[k] = v[k] ?? null;
  // Audio of the same stream: Chromium delays the video to play in sync with it.
  out.audio = a && {delay: a.jitterBufferDelay ?? 0, target: a.jitterBufferTargetDelay ?? 0,
                    emitted: a.jitterBufferEmittedCount ?? 0, jitter: a.jitter ?? null,
                    playout: playout && playout.totalPlayoutDelay, played: playout && playout.totalSamplesCount};
  return out;
}"""

GRAB_CLOCK_JS = """(rows) => {
  const v = document.querySelector('#remote-video');
  if (!v || v.videoWidth === 0) return null;
  const w = v.videoWidth, h = Math.min(rows, v.videoHeight);
  let c = window.__benchGrab;
  if (!c) c = window.__benchGrab = document.createElement('canvas');
  if (c.width !== w || c.height !== h) { c.width = w; c.height = h; }
  const g = c.getContext('2d', {willReadFrequently: true});
  const t = performance.timeOrigin + performance.now();
  g.drawImage(v, 0, 0, w, h, 0, 0, w, h);  // the frame on screen now, top rows only
  const px = g.getImageData(0, 0, w, h).data;
  const luma = new Uint8Array(w * h);
  for (let i = 0, j = 0; j < luma.length; i += 4, j++) luma[j] = (px[i] * 299 + px[i + 1] * 587 + px[i + 2] * 114) / 1000;
  let s = '';
  for (let i = 0; i < luma.length; i += 0x8000) s += String.fromCharCode.apply(null, luma.subarray(i, i + 0x8000));
  return {w, h, t, luma: btoa(s)};
}"""


async def page_offset(page, samples: int = 15) -> tuple[float, float]:
    """(time.time() - page clock) in seconds, and the half-width of its uncertainty in ms."""
    best = None
    for _ in range(samples):
        a = time.time()
        p = await page.evaluate(PAGE_CLOCK_JS)
        b = time.time()
        if best is None or b - a < best[0]:
            best = (b - a, (a + b) / 2 - p / 1000)
    return best[1], best[0] * 500


def window(s0: dict, s1: dict) -> dict:
    """Per-window figures from two VIDEO_STATS_JS snapshots."""
    d = {k: (s1[k] or 0) - (s0[k] or 0) for k in s1 if isinstance(s1[k], (int, float))}
    dt = d["timestamp"] / 1000
    emitted = max(1, d["jitterBufferEmittedCount"])
    out = {
        "fps": d["framesDecoded"] / dt, "fps_window_s": dt, "received_fps": d["framesReceived"] / dt,
        "dropped": d["framesDropped"], "freezes": d["freezeCount"], "freeze_s": d["totalFreezesDuration"],
        "jitter_buffer_ms": 1000 * d["jitterBufferDelay"] / emitted,
        "jitter_target_ms": 1000 * d["jitterBufferTargetDelay"] / emitted,
        "jitter_minimum_ms": 1000 * d["jitterBufferMinimumDelay"] / emitted,
        "decode_ms": 1000 * d["totalDecodeTime"] / max(1, d["framesDecoded"]),
        "processing_ms": 1000 * d["totalProcessingDelay"] / max(1, d["framesDecoded"]),
        "kbps": 8 * d["bytesReceived"] / dt / 1000, "size": (s1["frameWidth"], s1["frameHeight"]),
        "codec": s1["codec"], "decoder": s1["decoder"],
        "packets_lost": d["packetsLost"], "plis": d["pliCount"], "keyframes": d["keyFramesDecoded"],
        "audio_jitter_buffer_ms": None, "audio_target_ms": None, "audio_arrival_jitter_ms": None,
        "audio_playout_ms": None,
    }
    a0, a1 = s0.get("audio"), s1.get("audio")
    if a0 and a1 and a1["emitted"] > a0["emitted"]:
        out["audio_jitter_buffer_ms"] = 1000 * (a1["delay"] - a0["delay"]) / (a1["emitted"] - a0["emitted"])
        out["audio_target_ms"] = 1000 * (a1["target"] - a0["target"]) / (a1["emitted"] - a0["emitted"])
        out["audio_arrival_jitter_ms"] = None if a1["jitter"] is None else 1000 * a1["jitter"]  # RFC 3550, at the end
        if a0.get("played") is not None and (a1.get("played") or 0) > a0["played"]:
            # the audio output's own delay (Chromium's media-playout statistics), per sample played
            out["audio_playout_ms"] = 1000 * (a1["playout"] - a0["playout"]) / (a1["played"] - a0["played"])
    return out


def describe_window(w: dict) -> str:
    audio = "" if w["audio_jitter_buffer_ms"] is None else (
        f", audio jitter buffer {w['audio_jitter_buffer_ms']:.0f} ms, audio arrival jitter "
        f"{w['audio_arrival_jitter_ms'] if w['audio_arrival_jitter_ms'] is not None else math.nan:.1f} ms")
    return (f"{w['fps']:.1f} fps decoded over {w['fps_window_s']:.0f} s ({w['codec']} {w['decoder']}, "
            f"{w['size'][0]}x{w['size'][1]}, {w['kbps']:.0f} kbit/s, dropped {w['dropped']}, freezes {w['freezes']}; "
            f"video jitter buffer {w['jitter_buffer_ms']:.0f} ms (target {w['jitter_target_ms']:.0f}, minimum "
            f"{w['jitter_minimum_ms']:.0f}), decode {w['decode_ms']:.1f} ms{audio})")
