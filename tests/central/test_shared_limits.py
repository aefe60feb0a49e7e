"""The per-address limits of the booking pages: the same token bucket in memory (one central) and in a real
Valkey/Redis (several centrals), where a second central sees what the first counted, no address is stored in
clear, and a Valkey that does not answer lets the citizen through with a warning in the log."""
from __future__ import annotations

import asyncio
import logging

import pytest

from central.live.limits import Rate
from central.live.shared_limits import KEY_PREFIX, LocalLimit, ValkeyLimit
from tests import servers

RATE = Rate(capacity=3, per_second=1 / 10)
ADDRESS = "192.0.2.17"
SECRET = "the deployment's limit key"


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["memory", "valkey"])
def make_limit(request):
    """A factory of limits of one kind, all on the same store (the same Valkey database)."""
    if request.param == "memory":
        return lambda clock: LocalLimit(RATE, clock=clock)
    client = request.getfixturevalue("redis_client")
    return lambda clock: ValkeyLimit(client, "bookings", RATE, SECRET, clock=clock)


async def test_a_burst_then_refusal_with_the_right_wait_then_refill(make_limit):
    clock = Clock()
    limit = make_limit(clock)
    assert [await limit.take(ADDRESS) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert await limit.take(ADDRESS) == pytest.approx(10.0)
    assert await limit.take("192.0.2.18") == 0.0  # another address has its own bucket
    clock.now += 4
    assert await limit.take(ADDRESS) == pytest.approx(6.0)  # a refusal takes nothing
    clock.now += 6
    assert await limit.take(ADDRESS) == 0.0
    assert await limit.take(ADDRESS) == pytest.approx(10.0)
    clock.now += 3600
    assert [await limit.take(ADDRESS) for _ in range(4)][-1] == pytest.approx(10.0)  # full again, not more


async def test_a_second_central_sees_the_bucket_the_first_used(redis_client):
    first = ValkeyLimit(redis_client, "bookings", RATE, SECRET)  # Valkey's clock: the same for both
    second = ValkeyLimit(redis_client, "bookings", RATE, SECRET)
    assert [await first.take(ADDRESS) for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = await second.take(ADDRESS)
    assert 9 < wait <= 10
    other_limit = ValkeyLimit(redis_client, "code_misses", RATE, SECRET)
    assert await other_limit.take(ADDRESS) == 0.0  # each limit counts on its own


async def test_valkey_holds_no_address_in_clear_and_forgets_the_bucket(redis_client):
    limit = ValkeyLimit(redis_client, "bookings", Rate(capacity=2, per_second=4.0), SECRET)
    assert await limit.take(ADDRESS) == 0.0
    keys = await redis_client.keys("*")
    assert len(keys) == 1 and keys[0].decode().startswith(f"{KEY_PREFIX}bookings:")
    stored = keys[0] + b"".join(k + v for k, v in (await redis_client.hgetall(keys[0])).items())
    assert ADDRESS.encode() not in stored
    assert 0 < await redis_client.pttl(keys[0]) <= 250  # one token short: full again in 0.25 s
    other_deployment = ValkeyLimit(redis_client, "bookings", Rate(capacity=2, per_second=4.0), "another key")
    assert other_deployment.key(ADDRESS) != keys[0].decode()  # the key is no plain hash of the address


async def test_a_stopped_valkey_lets_the_citizen_through_and_says_so(caplog):
    import redis.asyncio as aioredis

    server = await asyncio.to_thread(servers.start_redis)
    client = aioredis.from_url(server.url, socket_timeout=1.0, socket_connect_timeout=1.0)
    try:
        limit = ValkeyLimit(client, "bookings", Rate(capacity=1, per_second=1 / 600), SECRET)
        assert await limit.take(ADDRESS) == 0.0
        assert await limit.take(ADDRESS) > 0
        await asyncio.to_thread(server.stop)
        with caplog.at_level(logging.WARNING, logger="central.live.shared_limits"):
            assert await limit.take(ADDRESS) == 0.0
        said = [r.getMessage() for r in caplog.records if r.name == "central.live.shared_limits"]
        assert any(m.startswith("limits: bookings not checked, Valkey/Redis did not answer") for m in said), said
        assert not any(ADDRESS in m for m in said)
    finally:
        await asyncio.to_thread(server.stop)
        await client.aclose()


async def test_unknown_codes_tried_on_one_central_count_on_the_other(request, redis_client):
    """Two real centrals on one Valkey: codes guessed on the leader leave no fresh burst on the other one."""
    import aiohttp

    from central.web.booking_guard import CODE_MISSES
    from tests.central.leadership_helpers import seeded_database, two_centrals, until_status

    database_url, _ = await seeded_database(request.getfixturevalue("postgresql_server"))
    async with two_centrals(database_url, request.getfixturevalue("redis_server").url) as (_, (leader, other)):
        await until_status(other, 200, path="/health/ws")
        async with aiohttp.ClientSession() as session:
            for i in range(int(CODE_MISSES.capacity)):
                async with session.get(f"{leader}/booking/{i:08d}") as r:
                    assert r.status == 404
            async with session.get(f"{other}/booking/{99:08d}") as r:
                assert r.status == 429 and int(r.headers["Retry-After"]) >= 1
        keys = [k.decode() for k in await redis_client.keys(f"{KEY_PREFIX}*")]
        assert len(keys) == 1 and keys[0].startswith(f"{KEY_PREFIX}code_misses:") and "127.0.0.1" not in keys[0]
