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
   Then the clerk hangs up and the kiosk goes idle again.

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

Every figure is printed as a JSON line (``kiosk_call.*``). Machine context is
printed with each window: the CPU of the clerk's Chromium (all its processes)
and how busy the whole machine was, because on a small machine the kiosk,
Chromium and anything else running share the cores.

Nothing leaves loopback (run inside ``tools/netns-run``): central's ICE server
list is empty, so no STUN/TURN server is ever asked; every wait is bounded.
"""
from __future__ import annotations

import asyncio
import base64
import logging
import math
import multiprocessing
import os
import shutil
import statistics
import struct
import sys
import threading
import time
from pathlib import Path

import numpy as np

from bench._common import (
    CHROMIUM,
    CHROMIUM_FLAGS,
    BenchError,
    emit,
    note,
    percentile,
    proc_cpu_s,
    process_tree,
    run_in_tmp,
)

NAME = "kiosk_call"
DEPARTMENT = "buergerbuero"
MODES = ("vp8", "h264", "passthrough")
WIDTH, HEIGHT, FPS = 1280, 720, 30
PASSTHROUGH_BITRATE = 1_500_000  # hardware.pi.camera's default for 1280x720
KIOSK_START_TIMEOUT_S = 30.0
ROW_TIMEOUT_S = 10.0
PICKUP_TIMEOUT_S = 15.0
ENDED_TIMEOUT_S = 10.0
MAX_FAILED_CALLS = 3
GRAB_ROWS = 160          # the clock code of a 1280-wide pattern sits in rows 32..127
GRAB_PAUSE_S = (0.02, 0.06)


# == the kiosk process ========================================================

class _PipeOutput:
    """picamera2's ``Output`` shape: each access unit goes over a pipe to the kiosk process."""

    needs_pacing = False
    needs_add_stream = False

    def __init__(self, conn, generation: int) -> None:
        self.conn, self.generation = conn, generation

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def outputframe(self, frame: bytes, keyframe: bool = True, timestamp: int | None = None,
                    packet=None, audio: bool = False) -> None:
        if audio or frame is None:
            return
        try:
            self.conn.send_bytes(struct.pack("<I?q", self.generation, bool(keyframe), timestamp or 0) + bytes(frame))
        except (BrokenPipeError, OSError):
            pass  # the kiosk went away; the encoder is stopped next


def encoder_main(commands, data) -> None:
    """Process entry point (spawn): the stand-in hardware encoder, started and stopped per call."""
    logging.basicConfig(level=logging.WARNING)
    from appliance.hardware.fake.h264_encoder import FakeH264Encoder

    encoder = None
    try:
        while True:
            try:
                cmd = commands.recv()
            except EOFError:
                break
            if cmd[0] == "start":
                _, generation, width, height, fps, bitrate = cmd
                if encoder is not None:
                    encoder.stop()
                # As hardware.pi.camera sets up picamera2's H264Encoder.
                encoder = FakeH264Encoder(bitrate=bitrate, repeat=True, iperiod=fps, framerate=fps, profile="baseline")
                encoder.output = _PipeOutput(data, generation)
                encoder.width, encoder.height = width, height
                encoder.start()
            elif cmd[0] == "stop":
                if encoder is not None:
                    encoder.stop()
                    encoder = None
            elif cmd[0] == "exit":
                break
    finally:
        if encoder is not None:
            encoder.stop()


class _BenchKiosk:
    """A scripted kiosk (like SimulatedKiosk) whose call setup the parent chooses per visit."""

    def __init__(self, conn, central_url: str, token: str) -> None:
        self.conn, self.central_url, self.token = conn, central_url, token
        self.loop = asyncio.get_running_loop()
        self.link = None
        self.peer = None
        self.visit_id: str | None = None
        self.config: dict = {}
        self.counts = {"remote_video": 0, "remote_audio": 0}
        self.source = None
        self.encoded = None
        self.generation = 0
        mp = multiprocessing.get_context("spawn")
        self.enc_commands, enc_commands_child = mp.Pipe()
        data_parent, data_child = mp.Pipe(duplex=False)
        self.encoder = mp.Process(target=encoder_main, args=(enc_commands_child, data_child),
                                  name="bench-standin-encoder", daemon=True)
        self.encoder.start()
        enc_commands_child.close()
        data_child.close()
        self.data = data_parent
        self.reader = threading.Thread(target=self._read_encoded, name="encoded-reader", daemon=True)
        self.reader.start()

    def send(self, *event) -> None:
        self.conn.send(event)

    # The "camera thread": access units from the stand-in encoder into the current track.
    def _read_encoded(self) -> None:
        header = struct.calcsize("<I?q")
        while True:
            try:
                blob = self.data.recv_bytes()
            except (EOFError, OSError):
                return
            generation, keyframe, timestamp_us = struct.unpack_from("<I?q", blob)
            track = self.encoded
            if track is not None and generation == self.generation:
                track.put(blob[header:], keyframe, timestamp_us)

    def _stop_encoder(self) -> None:
        try:
            self.enc_commands.send(("stop",))
        except (BrokenPipeError, OSError):
            pass

    async def run(self) -> None:
        import aiohttp

        from appliance.call.signaling import CentralLink

        commands: asyncio.Queue = asyncio.Queue()

        def readable() -> None:
            try:
                commands.put_nowait(self.conn.recv())
            except EOFError:
                commands.put_nowait(("exit",))
        self.loop.add_reader(self.conn.fileno(), readable)
        async with aiohttp.ClientSession() as session:
            self.link = CentralLink(self.central_url, self.token, session)
            await self.link.connect_with_backoff(attempts=10)
            messages = self.loop.create_task(self._messages())
            self.send("ready", os.getpid(), self.encoder.pid)
            try:
                while True:
                    cmd = await commands.get()
                    if cmd[0] == "request":
                        from protocol import messages as m
                        self.config = cmd[1]
                        await self.link.send(m.VisitRequest(type="visit.request", department=DEPARTMENT, language="de"))
                    elif cmd[0] == "reset":  # after a failed measurement: leave the visit, whatever its state
                        from protocol import messages as m
                        if self.visit_id:
                            await self.link.send(
                                m.VisitHangup(type="visit.hangup", visit_id=self.visit_id) if self.peer is not None
                                else m.VisitCancel(type="visit.cancel", visit_id=self.visit_id))
                        else:
                            self.send("ended", "idle", time.time())
                    elif cmd[0] == "stats":
                        self.send("stats", self._stats())
                    elif cmd[0] == "exit":
                        break
                    if messages.done():
                        raise RuntimeError(f"central link ended: {messages.exception()!r}")
            finally:
                messages.cancel()
                await self._end_call()
                await self.link.close()
                self.loop.remove_reader(self.conn.fileno())

    def _stats(self) -> dict:
        out = dict(self.counts)
        if self.source is not None:
            out["source_frames"] = self.source._index + 1
        if self.encoded is not None:
            out["encoded_in"], out["encoded_dropped"] = self.encoded.frames_in, self.encoded.dropped
        return out

    async def _messages(self) -> None:
        from protocol import messages as m
        async for message in self.link.messages():
            try:
                if isinstance(message, m.VisitQueued):
                    self.visit_id = message.visit_id
                    self.send("queued", message.visit_id)
                elif isinstance(message, m.CallStart):
                    self.send("call_start", time.time())
                    await self._start_call(message)
                elif isinstance(message, m.RtcAnswer) and self.peer:
                    await self.peer.accept_answer(message.sdp)
                elif isinstance(message, m.RtcCandidate) and self.peer:
                    await self.peer.add_candidate(message.candidate)
                elif isinstance(message, m.VisitEnded):
                    await self._end_call()
                    self.visit_id = None
                    self.send("ended", message.reason, time.time())
                elif isinstance(message, m.Error):
                    self.send("central_error", message.code, message.detail)
            except Exception as exc:  # report, do not die silently
                self.send("error", f"{type(exc).__name__}: {exc}")
        self.send("error", "connection to central closed")

    async def _start_call(self, message) -> None:
        from aiortc.mediastreams import MediaStreamError

        from appliance.call.peer import CallPeer
        from appliance.hardware.encoded import EncodedVideoTrack, h264_codecs
        from appliance.hardware.fake.camera import TestPatternTrack
        from appliance.hardware.fake.microphone import SyntheticMicrophoneTrack
        from appliance.kiosk.video_feed import receiver_for, tap_encoded_frames
        from protocol import messages as m

        await self._end_call()
        cfg = self.config
        self.counts = {"remote_video": 0, "remote_audio": 0}
        if cfg["mode"] == "passthrough":
            self.generation += 1
            video = EncodedVideoTrack(on_stop=self._stop_encoder)
            self.encoded, self.source = video, None
            self.enc_commands.send(("start", self.generation, cfg["width"], cfg["height"], cfg["fps"],
                                    PASSTHROUGH_BITRATE))
        else:
            video = TestPatternTrack(cfg["width"], cfg["height"], fps=cfg["fps"])
            self.source, self.encoded = video, None
        tracks = [video] + ([SyntheticMicrophoneTrack()] if cfg["audio"] else [])
        codecs = h264_codecs() if cfg["mode"] in ("h264", "passthrough") else None

        def on_encoded(codec, frame) -> None:
            if self.counts["remote_video"] == 0:
                self.send("first_video", time.time(), 0, 0)
            self.counts["remote_video"] += 1

        def on_track(track) -> None:
            if track.kind == "video" and cfg["tap"]:
                # As the appliance does (appliance/kiosk/video_feed.py): the clerk's picture is
                # taken from the receiver still encoded, for the kiosk page to decode.
                if tap_encoded_frames(receiver_for(peer.pc, track), on_encoded):
                    return
                self.send("tap_failed", time.time())

            async def consume() -> None:
                first = True
                try:
                    while True:
                        frame = await track.recv()
                        if track.kind == "video":
                            if first:
                                self.send("first_video", time.time(), frame.width, frame.height)
                                first = False
                            self.counts["remote_video"] += 1
                        else:
                            self.counts["remote_audio"] += 1
                except MediaStreamError:
                    pass
            self.loop.create_task(consume())

        peer = CallPeer(message.ice_servers, tracks, on_remote_track=on_track, video_codecs=codecs)
        if not cfg["receive"]:
            for transceiver in peer.pc.getTransceivers():
                transceiver.direction = "sendonly"
        self.peer = peer

        @peer.pc.on("connectionstatechange")
        def _state() -> None:
            if peer.pc.connectionState == "connected":
                self.send("connected", time.time())
        sdp = await peer.offer()
        await self.link.send(m.RtcOffer(type="rtc.offer", visit_id=message.visit_id, sdp=sdp))
        self.send("offer_sent", time.time())

    async def _end_call(self) -> None:
        peer, self.peer = self.peer, None
        if peer is not None:
            await peer.close()  # stops the tracks; the encoded track's on_stop stops the stand-in
        self.encoded = None
        self.source = None


def kiosk_main(conn, central_url: str, token: str) -> None:
    """Process entry point (spawn)."""
    logging.basicConfig(level=logging.WARNING)

    async def main() -> None:
        kiosk = _BenchKiosk(conn, central_url, token)
        try:
            await kiosk.run()
        finally:
            try:
                kiosk.enc_commands.send(("exit",))
            except (BrokenPipeError, OSError):
                pass
            kiosk.encoder.join(timeout=10)
            if kiosk.encoder.is_alive():
                kiosk.encoder.kill()
    try:
        asyncio.run(main())
    except Exception as exc:
        try:
            conn.send(("error", f"kiosk process failed: {type(exc).__name__}: {exc}"))
        except (BrokenPipeError, OSError):
            pass
        raise


class KioskProcess:
    """The parent's handle on the kiosk process: commands in, timestamped events out."""

    def __init__(self, central_url: str, token: str) -> None:
        mp = multiprocessing.get_context("spawn")
        self.conn, child = mp.Pipe()
        # Not a daemon: a daemonic process may not start the stand-in encoder's process.
        self.proc = mp.Process(target=kiosk_main, args=(child, central_url, token), name="bench-kiosk")
        self.proc.start()
        child.close()
        self.events: list[tuple] = []
        self._new = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self.conn.fileno(), self._readable)
        self.pid = self.encoder_pid = 0

    def _readable(self) -> None:
        try:
            while self.conn.poll():
                self.events.append(self.conn.recv())
        except (EOFError, OSError):
            self._loop.remove_reader(self.conn.fileno())
            self.events.append(("exited",))
        self._new.set()

    def mark(self) -> int:
        return len(self.events)

    async def wait(self, kind: str, since: int, timeout: float) -> tuple:
        deadline = self._loop.time() + timeout
        while True:
            for event in self.events[since:]:
                if event[0] == kind:
                    return event
                if event[0] in ("error", "exited", "central_error"):
                    raise BenchError(f"kiosk: {event}")
            remaining = deadline - self._loop.time()
            if remaining <= 0:
                raise TimeoutError(f"kiosk sent no {kind!r} within {timeout:g} s")
            self._new.clear()
            try:
                await asyncio.wait_for(self._new.wait(), remaining)
            except TimeoutError:
                pass

    async def start(self) -> None:
        ready = await self.wait("ready", 0, KIOSK_START_TIMEOUT_S)
        self.pid, self.encoder_pid = ready[1], ready[2]

    def command(self, *cmd) -> None:
        self.conn.send(cmd)

    async def stats(self) -> dict:
        mark = self.mark()
        self.command("stats")
        return (await self.wait("stats", mark, 5.0))[1]

    def stop(self) -> None:
        try:
            self.command("exit")
        except (BrokenPipeError, OSError):
            pass
        self.proc.join(timeout=15)
        if self.proc.is_alive():
            self.proc.terminate()
            self.proc.join(timeout=5)
        try:
            self._loop.remove_reader(self.conn.fileno())
        except (ValueError, OSError):
            pass


# == the clerk's page ==========================================================

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
  let v = null, a = null, codecs = {};
  (await pc.getStats()).forEach((r) => {
    if (r.type === 'inbound-rtp' && r.kind === 'video') v = r;
    if (r.type === 'inbound-rtp' && r.kind === 'audio') a = r;
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
                    emitted: a.jitterBufferEmittedCount ?? 0, jitter: a.jitter ?? null};
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


def tree_cpu_s(root_pid: int) -> tuple[float, float]:
    """CPU seconds of (the chromium processes, all processes) below ``root_pid``, ``root_pid`` itself included.

    Below this process: Playwright's driver, the browser and its children, the kiosk and the stand-in encoder.
    """
    children, names = process_tree()
    chromium, total, stack = 0.0, 0.0, [root_pid]
    while stack:
        pid = stack.pop()
        stack.extend(children.get(pid, ()))
        try:
            cpu = proc_cpu_s(pid)
        except OSError:  # gone meanwhile
            continue
        total += cpu
        if "chrom" in names.get(pid, ""):
            chromium += cpu
    return chromium, total


def machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of all CPUs since boot, from /proc/stat."""
    with open("/proc/stat", encoding="ascii") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    total = sum(values[:8])       # guest time is already inside user
    return total - idle, total


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
        "audio_jitter_buffer_ms": None, "audio_arrival_jitter_ms": None,
    }
    a0, a1 = s0.get("audio"), s1.get("audio")
    if a0 and a1 and a1["emitted"] > a0["emitted"]:
        out["audio_jitter_buffer_ms"] = 1000 * (a1["delay"] - a0["delay"]) / (a1["emitted"] - a0["emitted"])
        out["audio_arrival_jitter_ms"] = None if a1["jitter"] is None else 1000 * a1["jitter"]  # RFC 3550, at the end
    return out


def _describe_window(w: dict) -> str:
    audio = "" if w["audio_jitter_buffer_ms"] is None else (
        f", audio jitter buffer {w['audio_jitter_buffer_ms']:.0f} ms, audio arrival jitter "
        f"{w['audio_arrival_jitter_ms'] if w['audio_arrival_jitter_ms'] is not None else math.nan:.1f} ms")
    return (f"{w['fps']:.1f} fps decoded over {w['fps_window_s']:.0f} s ({w['codec']} {w['decoder']}, "
            f"{w['size'][0]}x{w['size'][1]}, {w['kbps']:.0f} kbit/s, dropped {w['dropped']}, freezes {w['freezes']}; "
            f"video jitter buffer {w['jitter_buffer_ms']:.0f} ms (target {w['jitter_target_ms']:.0f}, minimum "
            f"{w['jitter_minimum_ms']:.0f}), decode {w['decode_ms']:.1f} ms{audio})")


# == the run ==================================================================

class Bench:
    def __init__(self, args, central_url: str, credentials: dict, kiosk: KioskProcess, page) -> None:
        self.args, self.url, self.credentials, self.kiosk, self.page = args, central_url, credentials, kiosk, page
        self.results: dict = {"pickup": {}, "stream": {}}

    def config(self, mode: str, *, full: bool = True) -> dict:
        return {"mode": mode, "audio": full, "receive": full, "width": WIDTH, "height": HEIGHT, "fps": FPS,
                "tap": self.args.kc_kiosk_video == "encoded"}

    async def open_call(self, cfg: dict) -> dict:
        """Visit request -> row in the console -> pick-up; returns timings (ms from the click)."""
        mark = self.kiosk.mark()
        self.kiosk.command("request", cfg)
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
                 + f", clerk {_describe_window(r)}; CPU in % of one core: "
                 f"Chromium {r['chromium_cpu_pct']:.0f} %, this benchmark in all {r['ours_cpu_pct']:.0f} %, "
                 f"machine {r['machine_busy_pct']:.0f} % (of one core; {os.cpu_count()} cores)")
            if args.kc_g2g_seconds > 0:
                r["g2g"] = await self.glass_to_glass(label)
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
             f"{_describe_window(g['window'])}")
        return g


# == reporting ================================================================

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
                  + f"; clerk {_describe_window(r)}{g2g}; CPU in % of one core: Chromium "
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
    if app["config"].ice_servers:
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
                context = await browser.new_context(permissions=["camera", "microphone", "notifications"])
                page = await context.new_page()
                await page.goto(url + "/login")
                await page.fill("input[name=username]", credentials["clerk_user"])
                await page.fill("input[name=password]", credentials["clerk_password"])
                await page.click("button[type=submit]")
                await page.wait_for_url("**/console")
                await page.locator("[data-testid=connection-state][data-state=connected]").wait_for()
                bench = Bench(args, url, credentials, kiosk, page)
                for mode in args.kc_pickup_modes:
                    note(f"pick-up -> first frame, {mode}: {args.kc_calls} calls + 1 warm-up")
                    await bench.pickup(mode, args.kc_calls)
                for mode in args.kc_stream_modes:
                    for full in (True, False):
                        note(f"streaming {mode} {'call' if full else 'video only'}: {args.kc_warmup:g} s warm-up, "
                             f"{args.kc_seconds:g} s CPU/fps, {args.kc_g2g_seconds:g} s glass-to-glass")
                        try:
                            bench.results["stream"][(mode, full)] = await bench.stream(mode, full)
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
    group.add_argument("--kc-kiosk-video", choices=("encoded", "decoded"), default="encoded",
                       help="the clerk's picture in the kiosk process: taken encoded for the page to decode, as the "
                            "appliance does (default), or decoded by aiortc (the fallback when the tap fails)")


def run(args) -> int:
    quick = args.quick
    for name, full, short in (("kc_calls", 20, 5), ("kc_warmup", 4.0, 2.0), ("kc_seconds", 25.0, 8.0),
                              ("kc_g2g_seconds", 10.0, 4.0)):
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
