"""The guests' pictures on the kiosk page: one stream per guest, passed through as the clerk's is.

Each guest of a call (an interpreter, a colleague) sends the kiosk their picture on their own peer
connection. :class:`GuestVideoFeeds` keeps a :class:`~appliance.kiosk.video_feed.ClerkVideoFeed` per
guest, so their encoded frames reach the page undecoded, exactly like the clerk's
(docs/decisions/0004-kiosk-clerk-video-path.md), at ``GET /guest-video/<peer>/stream``. The page
(static/participants.js) opens one per tile of the view's ``participants``.

A page may ask before the guest's picture arrives (the tile appears when central says they joined):
the stream then waits, as the clerk's does. Nothing is written anywhere.
"""
from __future__ import annotations

import re
import threading

from aiortc.mediastreams import MediaStreamTrack
from flask import Blueprint, Flask, Response

from appliance.kiosk.video_feed import ClerkVideoFeed

STREAM_PATH = "/guest-video/<peer>/stream"
PEER = re.compile(r"^[A-Za-z0-9_-]{4,40}$")  # protocol/base.py PeerId
MAX_FEEDS = 6  # guests of one call, with room for one who rejoined; a page cannot make more


class GuestVideoFeeds:
    """The guests' pictures of the current call, by peer id."""

    def __init__(self, keepalive_s: float = 15.0) -> None:
        self.keepalive_s = keepalive_s
        self._feeds: dict[str, ClerkVideoFeed] = {}
        self._lock = threading.Lock()  # the event loop attaches, Flask's threads look up

    def feed(self, peer: str) -> ClerkVideoFeed | None:
        """The feed of ``peer`` (made when first asked for); None for a malformed id or too many."""
        if not PEER.match(peer):
            return None
        with self._lock:
            feed = self._feeds.get(peer)
            if feed is None and len(self._feeds) < MAX_FEEDS:
                feed = self._feeds[peer] = ClerkVideoFeed(self.keepalive_s)
            return feed

    # -- the event loop's side ---------------------------------------------------------
    def attach(self, peer: str, track: MediaStreamTrack, receiver=None) -> None:
        """Show ``track`` (guest ``peer``'s video) on their tile."""
        feed = self.feed(peer)
        if feed is not None:
            feed.attach(track, receiver)

    def detach(self, peer: str) -> None:
        with self._lock:
            feed = self._feeds.pop(peer, None)
        if feed is not None:
            feed.detach()

    def detach_all(self) -> None:
        """The call ended: every guest's page stream ends."""
        with self._lock:
            feeds, self._feeds = list(self._feeds.values()), {}
        for feed in feeds:
            feed.detach()

    # -- Flask's side -------------------------------------------------------------------
    def init_app(self, app: Flask) -> None:
        bp = Blueprint("guest_video", __name__)
        bp.add_url_rule(STREAM_PATH, "stream", self._stream_view, methods=["GET"])
        app.register_blueprint(bp)

    def _stream_view(self, peer: str) -> Response:
        feed = self.feed(peer)
        if feed is None:
            return Response("No such participant.", status=404, mimetype="text/plain")
        return feed._stream_view()
