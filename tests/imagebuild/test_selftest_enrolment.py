"""The guest's enrolment checks (image/build/selftest/enrolment_checks.py) against a stand-in kiosk page:
the code goes to the console in the line the host's claim-code.py looks for, once per new code, and the
kiosk's location and departments are reported the way boot-test.sh reads them back."""
from __future__ import annotations

import importlib.util
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.imagebuild.test_build_scripts import BUILD, _selftest

ENROL = {"screen": "enrol", "online": False, "departments": [],
         "enrol": {"serial": "10000000b00c0de1", "code": "K7MP-4QX9", "claim_url":
                   "http://central.amtsklingel.test:8080/admin/kiosks/enrol?code=K7MP-4QX9"}}
NEW_CODE = ENROL | {"enrol": ENROL["enrol"] | {"code": "R2D2-C3PQ"}}
IDLE = {"screen": "idle", "online": True, "location": "Boot test, QEMU", "enrol": None,
        "departments": [{"slug": "buergerbuero", "open": True}, {"slug": "standesamt", "open": True}]}


@pytest.fixture
def kiosk_page():
    """A page whose event stream shows the given views one after the other (the last one stays)."""
    views: list[dict] = []

    class Events(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's name
            view = views.pop(0) if len(views) > 1 else views[0]
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            self.wfile.write(f"data: {json.dumps(view)}\n\n".encode())

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Events)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield views, server.server_address[1]
    server.shutdown()


@pytest.fixture
def enrolment(monkeypatch):
    module = _selftest("enrolment_checks")
    monkeypatch.setattr(module, "POLL_S", 0.05)
    return module


def _claim_code_regex():
    spec = importlib.util.spec_from_file_location("claim_code", BUILD / "claim-code.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.CODE_LINE


def test_each_code_goes_to_the_console_once_until_the_unit_is_enrolled(kiosk_page, enrolment, capsys):
    views, port = kiosk_page
    views += [{"screen": "enrol", "online": False, "enrol": {"serial": "10000000b00c0de1"}},  # connecting
              ENROL, ENROL, NEW_CODE, NEW_CODE, IDLE]
    enrolment.enrol_by_code(port)
    out = capsys.readouterr().out
    assert _claim_code_regex().findall(out.encode()) == [b"K7MP-4QX9", b"R2D2-C3PQ"]
    assert "AMTSKLINGEL-SELFTEST PASS enrol-screen: code shown after" in out and "serial 10000000b00c0de1" in out
    assert ("AMTSKLINGEL-SELFTEST PASS enrolled: location 'Boot test, QEMU'; departments buergerbuero standesamt; "
            "screen idle, online True; 2 code(s) shown;") in out


def test_no_code_on_the_screen_fails(kiosk_page, enrolment, monkeypatch, capsys):
    views, port = kiosk_page
    views.append({"screen": "fault", "online": False, "fault": "config"})
    monkeypatch.setattr(enrolment, "ENROL_TIMEOUT_S", 0.5)
    enrolment.enrol_by_code(port)
    out = capsys.readouterr().out
    assert "AMTSKLINGEL-SELFTEST FAIL enrol-screen: no code on the screen within 0.5 s: screen fault" in out
    assert "AMTSKLINGEL-ENROL-CODE" not in out


def test_a_code_never_claimed_fails(kiosk_page, enrolment, monkeypatch, capsys):
    views, port = kiosk_page
    views.append(ENROL)
    monkeypatch.setattr(enrolment, "ENROL_TIMEOUT_S", 0.5)
    enrolment.enrol_by_code(port)
    out = capsys.readouterr().out
    assert "AMTSKLINGEL-ENROL-CODE K7MP-4QX9" in out
    assert "AMTSKLINGEL-SELFTEST FAIL enrolled: location None; departments none; screen enrol" in out


def test_settings_are_layered_like_the_appliance_does(enrolment, monkeypatch, tmp_path, capsys):
    built_in, unit = tmp_path / "built-in.toml", tmp_path / "unit.toml"
    monkeypatch.setattr(enrolment, "BUILT_IN", built_in)
    monkeypatch.setattr(enrolment, "UNIT_SETTINGS", unit)
    monkeypatch.setattr(enrolment, "TOKEN", tmp_path / "kiosk-token")
    built_in.write_text('central_url = "http://central.amtsklingel.test:8080"\n[hardware]\nbackend = "pi"\n')
    unit.write_text('[hardware]\nbackend = "fake"\n')
    assert enrolment.central_host() == "central.amtsklingel.test"
    enrolment.built_in_central()
    out = capsys.readouterr().out
    assert "PASS built-in-central" in out and "PASS no-token-before-enrolment" in out
    # An image built without --central: the boot test cannot enrol it by code.
    built_in.write_text('[hardware]\nbackend = "pi"\n')
    unit.write_text('central_url = "http://central.amtsklingel.test:8080"\n')
    enrolment.built_in_central()
    assert "FAIL built-in-central" in capsys.readouterr().out
    assert Path(enrolment.__file__).parent == BUILD / "selftest"
