"""The kiosk's session with central, against a central played by the test (tests/appliance/fake_central.py):
waits between reconnects, stops for good when another unit took over, never hangs on a stalled central."""
from __future__ import annotations

import asyncio

import pytest

from appliance.call.backoff import Backoff
from appliance.call.session import CentralSession
from protocol import messages as m
from tests.appliance.fake_central import fake_central

TOKEN = "kiosk-1." + "k" * 30


class Events:
    def __init__(self):
        self.posted: list[tuple[str, object]] = []

    def __call__(self, kind, value):
        self.posted.append((kind, value))

    def kinds(self):
        return [kind for kind, _ in self.posted]


@pytest.fixture
async def running():
    tasks = []

    def run(session):
        tasks.append(asyncio.get_running_loop().create_task(session.run()))
        return tasks[-1]
    yield run
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def test_backoff_grows_with_jitter_and_resets_only_after_a_healthy_connection():
    backoff = Backoff(start_s=0.75, max_s=30.0, healthy_s=60.0)
    delays = [backoff.next_delay() for _ in range(10)]
    assert 0.5 <= delays[0] <= 1.0
    assert all(later > 0 for later in delays)
    assert max(delays) <= 30.0 and delays[-1] >= 20.0  # capped, still jittered
    backoff.connection_closed(lasted_s=5.0)  # opened, then dropped: no reset
    assert backoff.next_delay() >= 20.0
    backoff.connection_closed(lasted_s=61.0)
    assert 0.5 <= backoff.next_delay() <= 1.0
    low = Backoff(uniform=lambda a, b: a)
    high = Backoff(uniform=lambda a, b: b)
    assert [round(low.next_delay(), 2) for _ in range(3)] == [0.5, 1.0, 2.0]
    assert [round(high.next_delay(), 2) for _ in range(3)] == [1.0, 2.0, 4.0]


def test_after_an_outage_of_any_length_the_next_attempt_comes_within_10_s():
    backoff = Backoff()
    assert max(backoff.next_delay() for _ in range(30)) <= 10.0


async def test_a_connection_that_opens_and_closes_at_once_is_followed_by_a_growing_wait(running):
    events = Events()
    async with fake_central(close_at_once=True) as central:
        running(CentralSession(central.url, TOKEN, events))
        await central.connection(4)
        gaps = [b - a for a, b in zip(central.connected_at, central.connected_at[1:])]
    # The default waits: 0.5-1 s, then 1-2 s, then 2-4 s (a quick reconnect loop made 412 connections in 5 s).
    assert gaps[0] >= 0.5 and gaps[1] >= 1.0 and gaps[2] >= 2.0, gaps
    assert events.kinds()[:4] == ["connected", "disconnected", "connected", "disconnected"]


async def test_replaced_stops_reconnecting_and_says_so(running):
    events = Events()
    async with fake_central() as central:
        session = CentralSession(central.url, TOKEN, events, backoff=Backoff(start_s=0.05))
        task = running(session)
        conn = await central.connection(1)
        await conn.send(type="error", code="replaced", detail="another kiosk connected with this token")
        async with asyncio.timeout(10):
            await task  # the session ends: no reconnect loop between two units with one token
        assert events.posted[-1] == ("fault", "replaced") and session.stopped_replaced
        assert len(central.connections) == 1


async def test_a_stalled_central_is_cut_and_reconnected_without_the_sender_waiting(running):
    events = Events()
    async with fake_central(reading=False) as central:
        session = CentralSession(central.url, TOKEN, events, send_timeout_s=0.5, backoff=Backoff(start_s=0.05))
        running(session)
        await central.connection(1)
        await session.connected.wait()
        offer = m.RtcOffer(type="rtc.offer", visit_id="v" * 24, sdp="v=0\r\n" + "a" * 31_000)
        async with asyncio.timeout(5):  # never waits on the network
            for _ in range(150):  # 4.6 MB: more than the link's buffers take before they stall
                await session.send(offer)
                await asyncio.sleep(0.005)  # sent over time, as a controller sends
        await central.connection(2)  # the stalled link was treated as a network fault
        assert "disconnected" in events.kinds()
