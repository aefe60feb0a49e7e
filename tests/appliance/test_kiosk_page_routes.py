"""The kiosk page's routes through Flask's test client: the page in the view's language with strict headers,
only this machine as host, actions checked before they reach the appliance, the catalogue for the page's
script, and the event stream of views."""
from __future__ import annotations

import json
import re

import pytest

from appliance.controller.view import Screen
from appliance.kiosk import create_app
from tests.appliance import kiosk_page
from tests.appliance.kiosk_page import CATALOGUES, LANGUAGES, view

bridge = kiosk_page.bridge  # the page's fixture, here too


@pytest.fixture
def client(bridge):
    return create_app(bridge).test_client()


def test_page_is_in_the_views_language_with_strict_headers(bridge, client):
    bridge.show(view("ar"))
    res = client.get("/")
    assert res.status_code == 200
    assert '<html lang="ar" dir="rtl">' in res.text
    csp = res.headers["Content-Security-Policy"]
    for part in ("default-src 'self'", "img-src 'self' data:", "media-src 'self' blob:", "connect-src 'self'"):
        assert part in csp
    assert "unsafe-inline" not in csp and "http" not in csp
    assert res.headers["X-Frame-Options"] == "DENY"
    assert re.search(r"<script>|\son\w+=", res.text) is None  # no inline code anywhere
    for lang in LANGUAGES:  # one button per language, in its own name
        assert f'>{CATALOGUES[lang].name}</button>' in res.text


@pytest.mark.parametrize("host", ["evil.example", "127.0.0.1.evil.example", "192.168.1.20:8000", "[::1]:8000"])
def test_refuses_any_host_but_this_machine(client, host):
    assert client.get("/", headers={"Host": host}).status_code == 400
    assert client.post("/action", json={"action": "press"}, headers={"Host": host}).status_code == 400


@pytest.mark.parametrize("host", ["127.0.0.1:8000", "localhost:8000", "localhost"])
def test_serves_this_machine(client, host):
    assert client.get("/", headers={"Host": host}).status_code == 200


@pytest.mark.parametrize("body", [
    {"action": "press"}, {"action": "long_press", "value": None}, {"action": "confirm"}, {"action": "cancel"},
    {"action": "hangup"}, {"action": "choose", "value": "buergerbuero"}, {"action": "language", "value": "uk"},
])
def test_actions_reach_the_bridge(bridge, client, body):
    assert client.post("/action", json=body).status_code == 204
    assert bridge.actions == [(body["action"], body.get("value"))]


@pytest.mark.parametrize("body, error", [
    ({"action": "reboot"}, "unknown_action"),
    ({"action": ["press"]}, "unknown_action"),
    ({}, "unknown_action"),
    ({"action": "press", "value": "x"}, "bad_value"),
    ({"action": "choose"}, "bad_value"),
    ({"action": "choose", "value": "Bürgerbüro"}, "bad_value"),
    ({"action": "choose", "value": "a" * 41}, "bad_value"),
    ({"action": "choose", "value": "bauamt\n"}, "bad_value"),
    ({"action": "language", "value": "fr"}, "bad_value"),
    ({"action": "language", "value": "../de"}, "bad_value"),
    (["press"], "bad_request"),
])
def test_bad_actions_get_a_clear_error_and_change_nothing(bridge, client, body, error):
    res = client.post("/action", json=body)
    assert res.status_code == 400
    assert res.json["error"] == error and res.json["detail"]
    assert bridge.actions == []


def test_actions_must_be_json_from_this_page(bridge, client):
    assert client.post("/action", data="action=press",
                       content_type="application/x-www-form-urlencoded").status_code == 400
    assert client.post("/action", json={"action": "press"},
                       headers={"Origin": "http://evil.example"}).status_code == 403
    assert client.post("/action", data="x" * 10000, content_type="application/json").status_code == 413
    assert bridge.actions == []
    assert client.post("/action", json={"action": "press"}, headers={"Origin": "http://localhost"}).status_code == 204


def test_catalogue_for_the_page_script(client):
    res = client.get("/i18n/ar.json")
    assert res.status_code == 200
    assert res.json["dir"] == "rtl" and res.json["name"] == "العربية"
    assert res.json["messages"]["Press the button"] == "اضغط على الزر"
    assert client.get("/i18n/de.json").json["messages"]["Nothing was stored."] == "Es wurde nichts gespeichert."
    assert client.get("/i18n/fr.json").status_code == 404
    assert client.get("/i18n/..%2Fde.json").status_code == 404


def test_events_start_with_the_current_view_then_follow_changes(bridge, client):
    client.application.config["KIOSK_KEEPALIVE_S"] = 0.05
    res = client.get("/events", buffered=False)
    assert res.mimetype == "text/event-stream"
    chunks = iter(res.response)
    first = next(chunks).decode()
    assert first.startswith("retry: ")
    assert json.loads(first.split("data: ", 1)[1]) == json.loads(json.dumps(bridge.current_view()))
    assert next(chunks) == b": keep-alive\n\n"  # nothing changed for a while
    bridge.show(view(screen=Screen.CHOOSING, selected="standesamt"))
    data = json.loads(next(chunks).decode().removeprefix("data: "))
    assert data["screen"] == "choosing" and data["selected"] == "standesamt"
    assert bridge.subscribers == 1
    res.close()  # the browser went away
    assert bridge.subscribers == 0
