"""Time-limited TURN credentials (coturn's REST-API secret): configured once, fresh for each peer."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import pytest

from central.config import TURN_SECRET_ENV, Config, ConfigError
from central.live.ice import IceServers
from tests.central.conftest import running_central
from tests.central.guest_calls import call_in_progress, hello, invite
from tests.central.home_client import home
from tests.central.test_kiosk_settings import Admin, form

SECRET = "4d1c0a7f9e2b8c3d5a6f7e8d9c0b1a2f"
TURN_URL = "turn:127.0.0.1:3478?transport=udp"


def coturn_password(username: str, secret: str = SECRET) -> str:
    """What coturn computes for a REST-API user name (its use-auth-secret mode)."""
    return base64.b64encode(hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()).decode()


def turn_config(tmp_path, **more) -> Config:
    secret = tmp_path / "turn-secret"
    secret.write_text(SECRET + "\n")
    return Config.from_dict({"database_url": f"sqlite:///{tmp_path}/central.db", "secure_cookies": False,
                             "turn_urls": [TURN_URL], "turn_secret_file": str(secret), **more})


def expires(server: dict) -> int:
    return int(server["username"].split(":", 1)[0])


def test_the_secret_comes_from_a_file_or_the_environment_and_never_shows(tmp_path, monkeypatch):
    config = turn_config(tmp_path)
    assert SECRET not in repr(config) and SECRET not in str(config.turn)
    monkeypatch.setenv(TURN_SECRET_ENV, SECRET)
    from_env = Config.from_dict({"database_url": "sqlite:///x.db", "turn_urls": [TURN_URL]})
    assert from_env.turn.secret == config.turn.secret


def test_turn_without_a_usable_secret_stops_start_up(tmp_path, monkeypatch):
    monkeypatch.delenv(TURN_SECRET_ENV, raising=False)
    base = {"database_url": "sqlite:///x.db", "turn_urls": [TURN_URL]}
    with pytest.raises(ConfigError, match=f"turn_secret_file, or set {TURN_SECRET_ENV}"):
        Config.from_dict(base)
    with pytest.raises(ConfigError, match="cannot be read"):
        Config.from_dict(base | {"turn_secret_file": str(tmp_path / "missing")})
    (tmp_path / "short").write_text("abc")
    with pytest.raises(ConfigError, match="too short"):
        Config.from_dict(base | {"turn_secret_file": str(tmp_path / "short")})
    with pytest.raises(ConfigError, match="does not belong in this file"):
        Config.from_dict(base | {"turn_secret": SECRET})
    with pytest.raises(ConfigError, match="turn: or turns: URLs"):
        Config.from_dict(base | {"turn_urls": ["stun:127.0.0.1:3478"]})
    with pytest.raises(ConfigError, match="turn_credential_s"):
        Config.from_dict(base | {"turn_credential_s": 0})


def test_each_peer_gets_its_own_credentials_that_coturn_accepts_until_they_expire(tmp_path):
    config = turn_config(tmp_path, turn_credential_s=600)
    now = [1_765_000_000.0]
    ice = IceServers(config.ice_servers, config.turn, clock=lambda: now[0])
    kiosk, = ice.for_peer("kiosk-7")
    assert kiosk.urls == [TURN_URL]
    assert kiosk.username == "1765000600:kiosk-7"
    assert kiosk.credential == coturn_password(kiosk.username)
    now[0] += 60
    later, = ice.for_peer("kiosk-7")
    assert expires(later.model_dump()) == 1_765_000_660 and later.credential != kiosk.credential


async def test_kiosk_and_console_get_fresh_credentials_and_never_the_secret(tmp_path):
    config = turn_config(tmp_path, turn_credential_s=600,
                         ice_servers=[{"urls": ["stun:127.0.0.1:3478"]}])
    async with running_central(config) as central:
        before = time.time()
        clerk = await central.clerk()
        kiosk = await central.kiosk()
        snapshot, welcome = clerk.inbox[0], kiosk.inbox[0]
        for message in (snapshot, welcome):
            stun, turn = message["ice_servers"]
            assert stun == {"urls": ["stun:127.0.0.1:3478"], "username": None, "credential": None}
            assert turn["credential"] == coturn_password(turn["username"])
            assert int(before) + 600 <= expires(turn) <= time.time() + 600
        assert welcome["ice_servers"][1]["username"].endswith(":kiosk-1")
        assert snapshot["ice_servers"][1]["username"].split(":")[1].startswith("staff-")

        await kiosk.send(type="visit.request", department="buergerbuero")
        await kiosk.recv("visit.queued")
        await clerk.recv("queue.joined")
        await clerk.send(type="visit.pickup", department="buergerbuero")
        for message in (await clerk.recv("call.assigned"), await kiosk.recv("call.start")):
            turn = message["ice_servers"][1]
            assert turn["credential"] == coturn_password(turn["username"])
        everything = json.dumps(clerk.inbox + kiosk.inbox)
        assert SECRET not in everything


async def test_a_kiosk_whose_credentials_expired_gets_new_ones_with_its_next_call(tmp_path):
    config = turn_config(tmp_path, turn_credential_s=1)
    async with running_central(config) as central:
        clerk = await central.clerk()
        kiosk = await central.kiosk()
        welcome = kiosk.inbox[0]["ice_servers"][0]
        while time.time() <= expires(welcome):
            await kiosk.quiet(0.2)  # the welcome's credentials run out
        await kiosk.send(type="visit.request", department="buergerbuero")
        await kiosk.recv("visit.queued")
        await clerk.send(type="visit.pickup", department="buergerbuero")
        start = (await kiosk.recv("call.start"))["ice_servers"][0]
        assert expires(start) > time.time()
        assert start["credential"] == coturn_password(start["username"])


async def test_the_admin_sets_a_kiosk_relay_only_only_when_central_has_a_turn_server(tmp_path):
    for config, turn in ((Config(database_url=f"sqlite:///{tmp_path}/plain.db", secure_cookies=False), False),
                         (turn_config(tmp_path), True)):
        async with running_central(config) as central:
            admin = Admin(central, await central.login("admin", central.credentials["admin_password"]))
            kiosk = await central.kiosk()
            kiosk_id = int(central.credentials["kiosk_token"].split(".")[0])
            status, _, page = await admin.post(f"/admin/fleet/{kiosk_id}/settings", form(relay_only="on"))
            if turn:
                assert status == 303
                assert (await kiosk.recv("kiosk.settings"))["settings"]["relay_only"] is True
            else:
                assert status == 400 and "has no TURN server configured" in page
                assert await kiosk.quiet() == []  # nothing changed, nothing sent
                assert (await central.db.kiosk_settings.overrides(kiosk_id)).get("relay_only") is None


async def test_visitors_from_home_and_guests_get_credentials_of_their_own(tmp_path):
    async with running_central(turn_config(tmp_path, turn_credential_s=600)) as central:
        visitor = await home(central)
        guest, welcome = await hello(central, await invite(await call_in_progress(central)))
        for servers, who in ((visitor.welcome["ice_servers"], "home"), (welcome["ice_servers"], "guest")):
            turn, = servers
            assert turn["username"].endswith(f":{who}") and expires(turn) > time.time()
            assert turn["credential"] == coturn_password(turn["username"])
        assert SECRET not in json.dumps(visitor.inbox + guest.inbox)
