"""Serving a feed's pictures to kiosk pages: the stream format, per-page queues, the Flask view.

Used by :mod:`appliance.kiosk.video_feed` (the clerk's picture) and
:mod:`appliance.kiosk.self_view` (the citizen's own). Each feed decides what goes on
the stream; :class:`StreamFeed` keeps the pages' queues and serves them.

Stream format (one HTTP response, chunked; read with fetch): records of a
16-byte little-endian header ``kind u8, flags u8, reserved u16, length u32,
timestamp_us u64`` and ``length`` bytes of payload. Kinds: 0 keep-alive,
1 config (JSON: ``{"mode": "encoded", "codec": "vp8"}`` or ``{"mode": "raw"}``),
2 encoded frame (flags bit 0: key frame), 3 raw I420 frame (``width u32,
height u32``, then Y, U, V), 4 the feed's video ended.

Nothing is written anywhere: frames live in bounded in-memory queues and are
dropped once sent.
"""
from __future__ import annotations

import json
import queue
import struct
import threading
from collections.abc import Callable, Iterator

import av
import numpy as np
from flask import Blueprint, Flask, Response

HEADER = struct.Struct("<BBHIQ")
KEEPALIVE, CONFIG, ENCODED, RAW, END = range(5)
ENCODED_BACKLOG = 30    # frames (1 s): a page further behind starts again at a fresh key frame
RAW_BACKLOG = 2         # raw frames: only the newest matter
MAX_CLIENTS = 4         # the kiosk page, and a reload that overlaps it
_END = object()


def record(kind: int, payload: bytes = b"", *, key: bool = False, timestamp_us: int = 0) -> bytes:
    return HEADER.pack(kind, int(key), 0, len(payload), timestamp_us & 0xFFFF_FFFF_FFFF_FFFF) + payload


def raw_payload(frame: av.VideoFrame) -> bytes:
    w, h = frame.width // 2 * 2, frame.height // 2 * 2
    if frame.format.name != "yuv420p":
        frame = frame.reformat(format="yuv420p")
    out = bytearray(8 + w * h * 3 // 2)
    struct.pack_into("<II", out, 0, w, h)
    pos = 8
    for plane, (pw, ph) in zip(frame.planes, ((w, h), (w // 2, h // 2), (w // 2, h // 2))):
        src = np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size)[:ph, :pw]
        np.frombuffer(out, np.uint8, pw * ph, pos).reshape(ph, pw)[:] = src
        pos += pw * ph
    return bytes(out)


class Client:
    """One page's stream: what is queued for it, and whether it must wait for a key frame."""

    def __init__(self) -> None:
        self.queue: queue.Queue = queue.Queue(ENCODED_BACKLOG)
        self.need_key = True

    def offer(self, item) -> bool:
        """Queue ``item``; False if the queue was full and has been emptied."""
        try:
            self.queue.put_nowait(item)
            return True
        except queue.Full:
            while True:
                try:
                    self.queue.get_nowait()
                except queue.Empty:
                    return False


class StreamFeed:
    """The pages streaming one feed, and the Flask view that serves them.

    A subclass sets ``stream_path``, ``blueprint_name`` and ``busy_message``, and
    feeds frames with :meth:`_set_config`, :meth:`_send_encoded` and
    :meth:`_clients_with_room`, on the event loop; the stream is served by Flask's
    threads. ``stats`` counts at least ``frames_out`` and ``clients``.
    """

    stream_path: str
    blueprint_name: str
    busy_message: str

    def __init__(self, keepalive_s: float, stats: dict) -> None:
        self.keepalive_s = keepalive_s
        self.stats = stats
        self._lock = threading.Lock()
        self._clients: set[Client] = set()
        self._config: dict | None = None
        self._config_record: bytes | None = None

    # -- the event loop's side -----------------------------------------------------
    def _set_config(self, config: dict) -> None:
        """Send ``config`` to every page; each then waits for a key frame."""
        rec = record(CONFIG, json.dumps(config).encode())
        with self._lock:
            self._config, self._config_record = config, rec
            for client in self._clients:
                client.need_key = True
                client.offer(rec) or client.offer(rec)

    def _end_streams(self, *, tell_pages: bool) -> None:
        """Forget the config; with ``tell_pages``, each page gets an end record."""
        with self._lock:
            self._config = self._config_record = None
            clients = list(self._clients)
        if tell_pages:
            for client in clients:
                client.offer(_END) or client.offer(_END)

    def _send_encoded(self, key: bool, make_record: Callable[[], bytes]) -> bool:
        """Queue an encoded frame for every page that can use it; True if a page fell behind.

        ``make_record`` is called once, and only if some page takes the frame. A
        page that fell behind loses what it had queued and resumes at a key frame.
        """
        rec = None
        lost = False
        with self._lock:
            for client in self._clients:
                if client.need_key and not key:
                    continue
                rec = rec or make_record()
                if client.offer(rec):
                    client.need_key = False
                else:
                    client.need_key = lost = True
                    client.offer(self._config_record)
        return lost

    def _clients_with_room(self) -> list[Client]:
        """The pages that can take a raw frame now (a page that is behind skips frames)."""
        with self._lock:
            return [c for c in self._clients if c.queue.qsize() < RAW_BACKLOG]

    def _page_joined(self) -> None:
        """Called from Flask's thread when a page starts streaming."""

    # -- Flask's side --------------------------------------------------------------------
    def init_app(self, app: Flask) -> None:
        app.register_blueprint(self.blueprint())

    def blueprint(self) -> Blueprint:
        bp = Blueprint(self.blueprint_name, __name__)
        bp.add_url_rule(self.stream_path, "stream", self._stream_view, methods=["GET"])
        return bp

    def _stream_view(self) -> Response:
        with self._lock:
            if len(self._clients) >= MAX_CLIENTS:
                return Response(self.busy_message, status=503, mimetype="text/plain")
            client = Client()
            if self._config_record is not None:
                client.queue.put_nowait(self._config_record)
            self._clients.add(client)
            self.stats["clients"] = len(self._clients)
        self._page_joined()

        def stream() -> Iterator[bytes]:
            yield record(KEEPALIVE)  # the headers go out now, so the page knows it is connected
            while True:
                try:
                    item = client.queue.get(timeout=self.keepalive_s)
                except queue.Empty:
                    yield record(KEEPALIVE)  # writing is how werkzeug notices a page that went away
                    continue
                if item is _END:
                    yield record(END)
                    return
                if item[0] in (ENCODED, RAW):
                    self.stats["frames_out"] += 1
                yield item

        def gone() -> None:
            with self._lock:
                self._clients.discard(client)
                self.stats["clients"] = len(self._clients)

        response = Response(stream(), mimetype="application/octet-stream",
                            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})
        response.call_on_close(gone)
        return response
