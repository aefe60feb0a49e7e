"""The kiosk's side of bench.kiosk_video_path: receive the clerk's VP8, deliver it to the page.

One process per candidate path (``mode``), so its CPU time is the kiosk's cost
of that path and nothing else. It serves the bench page on 127.0.0.1 and
delivers the newest decoded frame by the path under test:

baseline        receive and decode only (what CallPeer does anyway); nothing to the page
raw-*           raw I420 over a WebSocket, one frame in flight (the page acks each)
vp8-ws*         the clerk's VP8 frames, not decoded, over a WebSocket (the page decodes: WebCodecs)
jpeg-ws         JPEG (PyAV mjpeg, q=5) over a WebSocket, one frame in flight
mjpeg-http      multipart/x-mixed-replace JPEG stream into an <img>
feed            what ships: appliance.kiosk.video_feed (encoded frames, Flask stream) + clerk-video.js
webrtc-vp8      re-encoded to VP8 by aiortc, loopback peer connection with the page
direct          nothing: the page is the clerk's peer itself (the kiosk receives no video)

Frames a slow consumer cannot take are dropped, never queued: the newest wins.
Pipe commands: ("clerk-offer", sdp) -> ("answer", sdp); ("reset",); ("stats",) -> dict; ("stop",).
"""
from __future__ import annotations

import asyncio
import fractions
import logging
import socket
import struct
import threading
import time
from pathlib import Path

import av
import numpy as np
from aiohttp import WSMsgType, web
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from appliance.hardware.fake.camera import read_clock
from appliance.kiosk.stream import raw_payload
from appliance.kiosk.video_feed import ClerkVideoFeed, receiver_for

log = logging.getLogger(__name__)
HERE = Path(__file__).parent
ROOT = HERE.parents[1]
SAMPLE_EVERY = 3          # read the clock on every 3rd decoded frame (as the page does)
ENCODED_BACKLOG = 30      # VP8 frames waiting for a slow page before we drop them and ask for a key frame
JPEG_QUALITY = 5          # mjpeg qscale: 2 best .. 31 worst; 5 looks clean on a 7" to 24" screen


class LatestFrame:
    """The newest decoded frame and its sequence number; waiting consumers wake on each new one."""

    def __init__(self) -> None:
        self.frame: av.VideoFrame | None = None
        self.seq = 0
        self._changed = asyncio.Condition()

    async def put(self, frame: av.VideoFrame) -> None:
        async with self._changed:
            self.frame, self.seq = frame, self.seq + 1
            self._changed.notify_all()

    async def after(self, seq: int) -> tuple[int, av.VideoFrame]:
        async with self._changed:
            await self._changed.wait_for(lambda: self.seq > seq)
            return self.seq, self.frame


def luma(frame: av.VideoFrame) -> np.ndarray:
    plane = frame.planes[0]
    return np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size)[:frame.height, :frame.width]


class JpegEncoder:
    def __init__(self) -> None:
        self._ctx: av.CodecContext | None = None
        self._pts = 0

    def encode(self, frame: av.VideoFrame) -> bytes:
        if self._ctx is None or (self._ctx.width, self._ctx.height) != (frame.width, frame.height):
            ctx = av.CodecContext.create("mjpeg", "w")
            ctx.width, ctx.height, ctx.pix_fmt = frame.width, frame.height, "yuv420p"
            ctx.color_range = av.video.reformatter.ColorRange.JPEG
            ctx.time_base = fractions.Fraction(1, 90000)
            ctx.qmin = ctx.qmax = JPEG_QUALITY
            self._ctx = ctx
        # JPEG is full range; the decoder gives limited range: scale, or black turns grey.
        full = frame.reformat(format="yuv420p", dst_color_range=av.video.reformatter.ColorRange.JPEG)
        self._pts += 3000
        full.pts, full.time_base = self._pts, self._ctx.time_base
        return b"".join(bytes(p) for p in self._ctx.encode(full))


def tap_encoded_frames(receiver, sink) -> None:
    """Hand the receiver's reassembled encoded frames to ``sink(codec, frame)`` instead of its decoder.

    aiortc offers no public way to receive without decoding: its receiver puts every
    complete frame on a private queue read by its decoder thread. Only the stop
    signal (None) still goes there, so the thread ends, and the track with it, as usual.
    """
    q = receiver._RTCRtpReceiver__decoder_queue
    put = q.put

    def divert(item, *args, **kwargs):
        if item is None:
            return put(item, *args, **kwargs)
        sink(*item)

    q.put = divert


class RelayTrack(MediaStreamTrack):
    """The newest decoded clerk frame, for aiortc to encode again towards the page."""

    kind = "video"

    def __init__(self, latest: LatestFrame) -> None:
        super().__init__()
        self._latest, self._seq = latest, 0

    async def recv(self) -> av.VideoFrame:
        if self.readyState != "live":
            raise MediaStreamError
        self._seq, frame = await self._latest.after(self._seq)
        return frame


class Kiosk:
    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.latest = LatestFrame()
        self.pcs: list[RTCPeerConnection] = []
        self.tasks: set[asyncio.Task] = set()
        self.receiver = None
        self.encoded_queues: set[asyncio.Queue] = set()
        self.feed = ClerkVideoFeed() if mode == "feed" else None
        self.reset()

    def reset(self) -> None:
        if getattr(self, "feed", None) is not None:
            self.feed.stats.update(frames_in=0, frames_out=0)
        self.decoded = 0
        self.delivered = 0
        self.latency_ms: list[float] = []

    def stats(self) -> dict:
        if self.feed is not None:
            self.decoded, self.delivered = self.feed.stats["frames_in"], self.feed.stats["frames_out"]
        return {"decoded": self.decoded, "delivered": self.delivered, "latency_ms": self.latency_ms}

    # -- from the clerk ---------------------------------------------------------------
    async def answer_clerk(self, sdp: str) -> str:
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))  # never a public STUN server
        self.pcs.append(pc)

        def on_track(track: MediaStreamTrack) -> None:
            if self.mode == "feed":  # the shipped path: appliance.kiosk.video_feed
                self.feed.attach(track, receiver_for(pc, track))
                return
            if self.mode.startswith("vp8-ws"):
                self.receiver = next(t.receiver for t in pc.getTransceivers() if t.receiver.track is track)
                tap_encoded_frames(self.receiver, self._on_encoded)
            self._spawn(self._consume(track))

        pc.on("track", on_track)
        await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        return pc.localDescription.sdp

    async def _consume(self, track: MediaStreamTrack) -> None:
        try:
            while True:
                frame = await track.recv()
                now_ms = time.time() * 1000
                self.decoded += 1
                if self.decoded % SAMPLE_EVERY == 0:
                    clock = read_clock(luma(frame))
                    if clock is not None:
                        self.latency_ms.append((now_ms - clock + 2**31) % 2**32 - 2**31)
                await self.latest.put(frame)
        except MediaStreamError:
            pass

    def _on_encoded(self, codec, frame) -> None:
        self.decoded += 1  # received, in this mode: nobody decodes
        for q in list(self.encoded_queues):
            if q.full():  # the page fell behind: start again from a key frame
                while not q.empty():
                    q.get_nowait()
                self.request_key_frame()
            q.put_nowait(frame)

    def request_key_frame(self) -> None:
        sources = self.receiver.getSynchronizationSources() if self.receiver else []
        if sources:
            self._spawn(self.receiver._send_rtcp_pli(sources[0].source))

    async def _encoded_websocket(self, ws: web.WebSocketResponse) -> None:
        q: asyncio.Queue = asyncio.Queue(ENCODED_BACKLOG)
        self.encoded_queues.add(q)
        self.request_key_frame()
        try:
            while not ws.closed:
                frame = await q.get()
                key = not frame.data[0] & 1  # VP8 frame tag, bit 0: 0 = key frame
                await ws.send_bytes(struct.pack("<II", int(key), frame.timestamp & 0xFFFFFFFF) + frame.data)
                self.delivered += 1
        except ConnectionError:
            pass  # the page went away
        finally:
            self.encoded_queues.discard(q)

    def _spawn(self, coro) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    # -- to the page -------------------------------------------------------------------
    async def page(self, request: web.Request) -> web.FileResponse:
        return web.FileResponse(HERE / "page.html", headers={"Cache-Control": "no-store"})

    async def page_js(self, request: web.Request) -> web.FileResponse:
        return web.FileResponse(HERE / "page.js", headers={"Cache-Control": "no-store"})

    async def websocket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(compress=False, max_msg_size=1024)
        await ws.prepare(request)
        if self.mode.startswith("vp8-ws"):
            await self._encoded_websocket(ws)
            return ws
        loop = asyncio.get_running_loop()
        jpeg = JpegEncoder() if self.mode == "jpeg-ws" else None
        seq = 0
        while not ws.closed:
            seq, frame = await self.latest.after(seq)
            if jpeg:  # the encoder releases the GIL; keep the event loop free meanwhile
                data = await loop.run_in_executor(None, jpeg.encode, frame)
            else:
                data = raw_payload(frame)  # the format the appliance serves raw frames in
            try:
                await ws.send_bytes(data)
            except ConnectionError:
                break
            msg = await ws.receive()  # the page's ack: it has drawn the frame
            if msg.type != WSMsgType.TEXT:
                break
            self.delivered += 1
        return ws

    async def mjpeg(self, request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "multipart/x-mixed-replace; boundary=frame",
                                           "Cache-Control": "no-store"})
        await resp.prepare(request)
        # The boundary goes right after each picture: Chromium shows a part only once
        # it has seen the boundary that ends it.
        await resp.write(b"--frame\r\n")
        loop = asyncio.get_running_loop()
        jpeg, seq = JpegEncoder(), 0
        try:
            while True:
                seq, frame = await self.latest.after(seq)
                data = await loop.run_in_executor(None, jpeg.encode, frame)
                await resp.write(b"Content-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n%s\r\n--frame\r\n"
                                 % (len(data), data))
                self.delivered += 1
        except (ConnectionError, asyncio.CancelledError):
            pass
        return resp

    async def offer(self, request: web.Request) -> web.Response:
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.pcs.append(pc)
        await pc.setRemoteDescription(RTCSessionDescription(sdp=await request.text(), type="offer"))
        pc.addTrack(RelayTrack(self.latest))
        await pc.setLocalDescription(await pc.createAnswer())
        return web.Response(text=pc.localDescription.sdp, content_type="application/sdp")

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/", self.page)
        app.router.add_get("/page.js", self.page_js)
        app.router.add_get("/ws", self.websocket)
        app.router.add_get("/mjpeg", self.mjpeg)
        app.router.add_post("/offer", self.offer)
        return app

    async def close(self) -> None:
        for pc in self.pcs:
            await pc.close()
        for task in list(self.tasks):
            task.cancel()


def _flask_page(feed) -> tuple[int, object]:
    """The shipped feed's set-up: a Flask app on werkzeug's threaded server, as the kiosk service runs it."""
    from flask import Flask, send_file
    from werkzeug.serving import make_server

    app = Flask(__name__, static_folder=str(ROOT / "appliance" / "kiosk" / "static"))
    feed.init_app(app)
    app.add_url_rule("/", "page", lambda: send_file(HERE / "page.html", max_age=0))
    app.add_url_rule("/page.js", "page_js", lambda: send_file(HERE / "page.js", max_age=0))
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, name="kiosk-page", daemon=True).start()
    return server.server_port, server


async def _serve(conn, mode: str) -> None:
    loop = asyncio.get_running_loop()
    kiosk = Kiosk(mode)
    runner = web.AppRunner(kiosk.app(), access_log=None)
    await runner.setup()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    await web.SockSite(runner, sock).start()
    flask_server = None
    if mode == "feed":
        port, flask_server = _flask_page(kiosk.feed)
    commands: asyncio.Queue = asyncio.Queue()
    loop.add_reader(conn.fileno(), lambda: commands.put_nowait(conn.recv()))
    conn.send(("ready", port))
    try:
        while True:
            cmd = await commands.get()
            if cmd[0] == "clerk-offer":
                conn.send(("answer", await kiosk.answer_clerk(cmd[1])))
            elif cmd[0] == "reset":
                kiosk.reset()
                conn.send(("ok",))
            elif cmd[0] == "stats":
                conn.send(("stats", kiosk.stats()))
            elif cmd[0] == "stop":
                break
    finally:
        loop.remove_reader(conn.fileno())
        await kiosk.close()
        await runner.cleanup()
        if flask_server is not None:
            flask_server.shutdown()


def main(conn, mode: str) -> None:
    """Process entry point (``multiprocessing``, spawn)."""
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no access log line per request
    asyncio.run(_serve(conn, mode))
    conn.send(("stopped",))
