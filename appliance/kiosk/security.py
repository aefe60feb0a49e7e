"""Who may talk to the kiosk page: only this machine, and only the page itself.

The server listens on 127.0.0.1, but a web page elsewhere can still make the kiosk's
browser, or a browser on a laptop plugged into the appliance, send requests here. The Host
check stops DNS rebinding; JSON-only actions with an Origin check stop cross-site posts.
"""
from __future__ import annotations

from flask import Flask, Response, abort, request

LOCAL_HOSTS = ("127.0.0.1", "localhost")
# Everything is served from here: no third-party scripts, fonts or frames. The clerk's
# picture may play from a blob: URL, the own picture may be a data: image.
CSP = ("default-src 'self'; img-src 'self' data:; media-src 'self' blob:; connect-src 'self'; "
       "object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")


def init_app(app: Flask) -> None:
    # Flask rejects any other Host with 400 before a view runs (port numbers are ignored).
    app.config["TRUSTED_HOSTS"] = list(LOCAL_HOSTS)
    app.before_request(_local_only)
    app.after_request(_headers)


def _local_only() -> None:
    if request.host.rsplit(":", 1)[0] not in LOCAL_HOSTS:  # also where TRUSTED_HOSTS is not enforced
        abort(400, "This page is served to this kiosk only.")
    origin = request.headers.get("Origin")
    if request.method == "POST" and origin is not None and origin != request.host_url.rstrip("/"):
        abort(403, "Actions come from the kiosk page only.")


def _headers(response: Response) -> Response:
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    # The page never captures: camera and microphone belong to the appliance's media stack.
    response.headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=(), payment=(), usb=()"
    response.headers["Cross-Origin-Opener-Policy"] = "same-origin"
    response.headers["Cross-Origin-Resource-Policy"] = "same-origin"
    return response
