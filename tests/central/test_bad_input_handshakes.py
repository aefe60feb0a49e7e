"""No kiosk or console socket without credentials: the WebSocket handshake refuses a missing, wrong or
revoked kiosk token, and a console without a session or opened from another origin."""
from __future__ import annotations

import aiohttp
import pytest
import yarl

pytestmark = pytest.mark.usefixtures("cheap_password_hashing")


async def _handshake_status(session: aiohttp.ClientSession, url: str, **kwargs) -> int:
    try:
        ws = await session.ws_connect(url, **kwargs)
    except aiohttp.WSServerHandshakeError as exc:
        return exc.status
    await ws.close()
    return 101


@pytest.mark.parametrize("authorization", [
    None, "", "Bearer", "Bearer ", "Bearer wrong", "Bearer 1.wrong", "Bearer .", "Basic {token}",
    "Bearer {token}x", "Bearer 999.{secret}", "Bearer {other_id}.{secret}", "Bearer {secret}",
    "Token {token}",
])
async def test_the_kiosk_socket_needs_a_valid_token(central, authorization):
    token = central.credentials["kiosk_token"]
    _, secret = token.split(".", 1)
    other_id, _ = await central.db.create_kiosk("Andere")
    headers = {}
    if authorization is not None:
        headers["Authorization"] = authorization.format(token=token, secret=secret, other_id=other_id)
    url = central.url.replace("http", "ws") + "/ws/kiosk"
    assert await _handshake_status(central.session, url, headers=headers) == 401
    assert not central.hub.kiosks
    assert await _handshake_status(central.session, url, headers={"Authorization": f"Bearer {token}"}) == 101


async def test_a_revoked_kiosk_token_is_refused(central):
    kiosk_id, token = await central.db.create_kiosk("Ausgemustert")
    url = central.url.replace("http", "ws") + "/ws/kiosk"
    assert await _handshake_status(central.session, url, headers={"Authorization": f"Bearer {token}"}) == 101
    await central.db.revoke_kiosk(kiosk_id)
    assert await _handshake_status(central.session, url, headers={"Authorization": f"Bearer {token}"}) == 401
    assert not central.hub.kiosks


async def test_the_staff_socket_needs_a_session_and_central_as_origin(central):
    url = central.url.replace("http", "ws") + "/ws/staff"
    # no session: no console, whatever the origin
    assert await _handshake_status(central.session, url, headers={"Origin": central.url}) == 401
    assert await _handshake_status(central.session, url) == 401
    # a kiosk token is not a session
    assert await _handshake_status(central.session, url, headers={
        "Origin": central.url, "Authorization": f"Bearer {central.credentials['kiosk_token']}"}) == 401
    # a forged or stale cookie is no session either
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as forged:
        forged.cookie_jar.update_cookies({"ak_session": "forged-session-token"}, yarl.URL(central.url))
        assert await _handshake_status(forged, url, headers={"Origin": central.url}) == 401

    session = await central.login("sachbearbeiterin", central.credentials["clerk_password"])
    for origin in ("https://evil.example", "null", central.url.replace("127.0.0.1", "localhost"),
                   central.url + ".evil.example", "http://127.0.0.1"):
        assert await _handshake_status(session, url, headers={"Origin": origin}) == 403, origin
    assert await _handshake_status(session, url) == 403  # no Origin at all
    assert not central.hub.staff
    assert await _handshake_status(session, url, headers={"Origin": central.url}) == 101
