"""The page's line to the controller: views out as Server-Sent Events, touches and keys in as actions."""
from __future__ import annotations

import json
import queue
import re

from flask import Blueprint, Response, current_app, jsonify, request

bp = Blueprint("live", __name__)

WITHOUT_VALUE = frozenset({"press", "long_press", "confirm", "cancel", "hangup", "selftest",
                           "booking", "booking_type", "booking_scan"})  # the appointment screen's buttons
SLUG = re.compile(r"[a-z0-9-]{1,40}")
TYPED_CODE = re.compile(r"[0-9A-Za-z -]{1,20}")  # the keypad's code as typed; the controller reads it
RETRY_MS = 2000  # how soon the browser reconnects after the service restarted


def _event(view: dict) -> str:
    return f"data: {json.dumps(view, ensure_ascii=False, separators=(',', ':'))}\n\n"


@bp.get("/events")
def events():
    bridge = current_app.extensions["kiosk.bridge"]
    keepalive = current_app.config["KIOSK_KEEPALIVE_S"]
    q = bridge.subscribe()
    first = bridge.current_view()  # after subscribing, so no view falls between the two

    def stream():
        yield f"retry: {RETRY_MS}\n" + _event(first)
        while True:
            try:
                view = q.get(timeout=keepalive)
            except queue.Empty:
                # Writing is how a server learns that the browser is gone: werkzeug then closes us.
                yield ": keep-alive\n\n"
                continue
            yield _event(view)

    response = Response(stream(), mimetype="text/event-stream",
                        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})
    # Runs when the server closes the stream, also if the generator never started.
    response.call_on_close(lambda: bridge.unsubscribe(q))
    return response


def _bad(code: str, detail: str):
    return jsonify(error=code, detail=detail), 400


@bp.post("/action")
def action():
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return _bad("bad_request", 'Send a JSON object such as {"action": "press"}.')
    name, value = body.get("action"), body.get("value")
    if not isinstance(name, str):
        name = ""
    if name in WITHOUT_VALUE:
        if value is not None:
            return _bad("bad_value", f"{name} takes no value.")
    elif name == "choose":
        if not isinstance(value, str) or not SLUG.fullmatch(value):
            return _bad("bad_value", "choose needs a department's short name (a-z, 0-9, -; up to 40).")
    elif name == "booking_code":
        if not isinstance(value, str) or not TYPED_CODE.fullmatch(value):
            return _bad("bad_value", "booking_code needs the typed code (letters, digits, - and spaces; up to 20).")
    elif name == "language":
        codes = current_app.extensions["kiosk.catalogues"].codes
        if value not in codes:
            return _bad("bad_value", f"language must be one of: {', '.join(codes)}.")
    else:
        return _bad("unknown_action", "action must be one of: press, long_press, choose, confirm, cancel, "
                                      "hangup, language, selftest, booking, booking_type, booking_scan, "
                                      "booking_code.")
    if name == "selftest":
        value = "button"  # the page's 5 s hold (Space in the demo) stands in for the call button's
    current_app.extensions["kiosk.bridge"].action(name, value)
    return "", 204
