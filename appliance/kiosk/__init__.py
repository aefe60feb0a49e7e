"""The kiosk page: served by Flask on 127.0.0.1 to the Chromium that cage shows fullscreen.

The page is a picture of the controller's current View (appliance/controller/view.py): it
gets every new view over Server-Sent Events and sends touches and the demo keyboard back as
actions. It decides nothing itself, so a page reload or a crashed browser loses nothing.
"""
from __future__ import annotations

from pathlib import Path
from typing import Protocol

from flask import Flask

from appliance.kiosk import live, page, security
from appliance.kiosk.i18n import CATALOGUE_DIR, Catalogues


class Bridge(Protocol):
    """The appliance service's side (appliance.service.bridge.ViewBridge); every method is thread-safe."""
    def current_view(self) -> dict: ...
    def subscribe(self): ...          # -> queue.Queue of view dicts
    def unsubscribe(self, q) -> None: ...
    def action(self, name: str, value: str | None) -> None: ...


def create_app(bridge: Bridge, *, locales_dir: Path | None = None, clerk_video=None, self_view=None,
               guest_video=None) -> Flask:
    """The kiosk page. ``clerk_video`` is the call's ClerkVideoFeed, ``self_view`` its
    SelfViewFeed, ``guest_video`` its GuestVideoFeeds; without them the stream endpoints still exist
    and simply have no picture to send."""
    from appliance.kiosk.guest_video import GuestVideoFeeds
    from appliance.kiosk.self_view import SelfViewFeed
    from appliance.kiosk.video_feed import ClerkVideoFeed
    app = Flask(__name__)
    app.config.from_mapping(
        KIOSK_KEEPALIVE_S=15.0,     # an SSE comment this often notices a browser that went away
        MAX_CONTENT_LENGTH=4096,    # an action is a few dozen bytes
        SEND_FILE_MAX_AGE_DEFAULT=None,
    )
    app.extensions["kiosk.bridge"] = bridge
    # Read at start-up, so a broken catalogue stops the service with a clear message.
    app.extensions["kiosk.catalogues"] = Catalogues(locales_dir or CATALOGUE_DIR)
    security.init_app(app)
    app.register_blueprint(page.bp)
    app.register_blueprint(live.bp)
    (clerk_video or ClerkVideoFeed()).init_app(app)
    (self_view or SelfViewFeed()).init_app(app)
    (guest_video or GuestVideoFeeds()).init_app(app)
    return app
