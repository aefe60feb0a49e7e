"""Abuse limits of the public ``/ws/visit`` without any third-party service: per-address limits on
connections and visit requests, a flood limit per connection, a cap on visitors from home per department,
bad input refused with a typed error, and nothing to learn about anybody else's visit."""
from __future__ import annotations

import asyncio
import json
import secrets

import aiohttp
import pytest

from tests.central.home_client import home, queued_at_home
from tests.central.test_waiting_rooms import SDP


async def connect_status(central, **headers: str) -> tuple[int, dict]:
    async with aiohttp.ClientSession() as session:
        try:
            ws = await session.ws_connect(central.url.replace("http", "ws") + "/ws/visit", headers=headers)
        except aiohttp.WSServerHandshakeError as exc:
            return exc.status, dict(exc.headers or {})
        await ws.close()
        return 101, {}


async def test_only_centrals_own_page_may_connect(central):
    assert (await connect_status(central))[0] == 403                                   # no Origin
    assert (await connect_status(central, Origin="https://evil.example"))[0] == 403   # another site
    assert (await connect_status(central, Origin=central.url))[0] == 101


async def test_an_address_may_hold_only_a_few_connections_and_open_them_only_so_fast(central):
    held = [await home(central) for _ in range(5)]
    status, headers = await connect_status(central, Origin=central.url)
    assert status == 429 and int(headers["Retry-After"]) > 0  # a sixth at the same time
    for peer in held:
        await peer.ws.close()
    await asyncio.sleep(0.1)
    statuses = [(await connect_status(central, Origin=central.url))[0] for _ in range(6)]
    assert statuses[:5] == [101] * 5 and statuses[5] == 429  # ten in a row, then one every few seconds
    assert central.hub.homes == {}


async def test_visit_requests_per_address_are_limited_across_connections(central):
    for _ in range(3):
        peer, queued = await queued_at_home(central)
        await peer.send(type="visit.cancel", visit_id=queued["visit_id"])
        await peer.recv("visit.ended")
        await peer.ws.close()
    again = await home(central)
    await again.send(type="visit.request", department="buergerbuero")
    refused = await again.recv("error")
    assert refused["code"] == "rate_limited" and refused["retry_after_s"] > 0
    assert len(central.hub.rooms) == 0


async def test_a_department_takes_only_so_many_visitors_from_home(central):
    central.hub.online_cap = 2
    first, _ = await queued_at_home(central)
    second, _ = await queued_at_home(central)
    third = await home(central)
    await third.send(type="visit.request", department="buergerbuero")
    assert (await third.recv("visit.refused"))["reason"] == "online_full"
    # Kiosk visitors do not count, and another department has its own room for visitors from home.
    kiosk = await central.kiosk()
    await kiosk.send(type="visit.request", department="buergerbuero")
    assert (await kiosk.recv("visit.queued"))["position"] == 3
    await third.send(type="visit.request", department="standesamt")
    await third.recv("visit.queued")


async def test_a_department_can_take_its_own_number_of_visitors_from_home(central):
    import dataclasses
    hub = central.hub
    hub.departments["standesamt"] = dataclasses.replace(hub.departments["standesamt"], online_cap=0)
    browser = await home(central)
    await browser.send(type="visit.request", department="standesamt")
    assert (await browser.recv("visit.refused"))["reason"] == "online_full"


async def test_a_flood_of_messages_is_cut(central):
    browser = await home(central)
    for _ in range(200):
        await browser.send(type="ping")
    got = [await browser.recv() for _ in range(200)]
    limited = [m for m in got if m["type"] == "error"]
    assert limited and all(m["code"] == "rate_limited" for m in limited)
    assert 100 <= sum(m["type"] == "pong" for m in got) < 200


@pytest.mark.parametrize("frame, code", [
    ("not json", "bad_json"),
    ("[1, 2]", "bad_json"),
    (json.dumps({"type": "kiosk.health"}), "unknown_type"),           # a kiosk's report: not from a browser
    (json.dumps({"type": "visit.pickup", "department": "buergerbuero"}), "unknown_type"),  # a clerk's
    (json.dumps({"type": "visit.request", "department": "Bürgerbüro!"}), "invalid_field"),
    (json.dumps({"type": "visit.request", "department": "buergerbuero", "booking": "nonsense"}), "invalid_field"),
    (json.dumps({"type": "visit.request", "department": "buergerbuero", "admin": True}), "invalid_field"),
    (json.dumps({"type": "rtc.offer", "visit_id": "x" * 24, "sdp": "v=0" * 30_000}), "too_large"),
])
async def test_bad_input_gets_a_typed_error_and_changes_nothing(central, frame, code):
    browser = await home(central)
    await browser.send_raw(frame)
    error = await browser.recv("error")
    assert error["code"] == code
    await browser.send(type="ping")
    await browser.recv("pong")  # still connected
    assert len(central.hub.rooms) == 0


async def test_nothing_is_learnt_of_another_visit(central):
    clerk = await central.clerk()
    victim, theirs = await queued_at_home(central)
    kiosk = await central.kiosk()
    await kiosk.send(type="visit.request", department="buergerbuero")
    at_kiosk = await kiosk.recv("visit.queued")
    prober = await home(central)

    # Another's visit id (from home or kiosk) is answered exactly as an id that never existed.
    answers = []
    for visit_id in (theirs["visit_id"], at_kiosk["visit_id"], secrets.token_urlsafe(18)):
        for message in ({"type": "visit.cancel"}, {"type": "rtc.offer", "sdp": SDP},
                        {"type": "rtc.state", "state": "failed"}, {"type": "visit.hangup"}):
            await prober.send(visit_id=visit_id, **message)
            answers.append((message["type"], await prober.recv("error")))
    first = {kind: error for kind, error in answers[:4]}
    assert all(error == first[kind] for kind, error in answers)
    assert all(e["code"] == "not_your_visit" for e in first.values())
    # Resuming another's visit needs its token; with a token of one's own it does not work either.
    _, own = await queued_at_home(central, "standesamt")
    for token in (own["resume_token"], "x" * 40):
        await prober.send(type="visit.resume", visit_id=theirs["visit_id"], resume_token=token)
        assert (await prober.recv("error"))["code"] == "not_your_visit"

    # Nothing reached anybody else, and no frame to the prober named another visit.
    assert [m for m in await victim.quiet() if m["type"] != "visit.position"] == []
    assert len(central.hub.rooms) == 3
    seen = json.dumps(prober.inbox)
    for secret in (theirs["resume_token"], at_kiosk["resume_token"], "Rathaus"):
        assert secret not in seen
    await clerk.quiet()
