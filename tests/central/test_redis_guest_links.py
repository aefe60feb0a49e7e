"""Guest links written through to a real Redis: a central that loads them lets the guest of an unused link in
and refuses a used or revoked one; Redis holds nothing that opens a call, and forgets the links after the
resume grace. (A link created before a real leader is killed and opened after: tests/central/test_failover.py.)"""
from __future__ import annotations

import asyncio

from central.cluster.lease import Lease
from central.rooms.redis_guest_links import GUESTS_KEY, LINKS_KEY, RedisGuestLinks

VISIT = "v-1"
CLERK = 7


async def new_leader(redis_client, expiry_s: float = 60) -> RedisGuestLinks:
    """Another central taking over: its book loaded from Redis."""
    links = RedisGuestLinks(redis_client, expiry_s)
    await links.load()
    return links


async def test_an_unused_link_opens_its_call_on_the_next_leader_and_a_used_or_revoked_one_does_not(redis_client):
    old = RedisGuestLinks(redis_client, 60)
    unused = old.create(VISIT, CLERK, "interpreter", "Dolmetscherin Türkisch")
    used = old.create(VISIT, CLERK, "colleague", "")
    revoked = old.create("v-2", CLERK, "interpreter", "")
    unused_secret, used_secret, revoked_secret = unused.secret, used.secret, revoked.secret
    assert old.claim(used_secret, link=object()) is used
    old.remove(revoked)
    await old.flush()

    new = await new_leader(redis_client)
    assert new.claim(used_secret, link=None) is None
    assert new.claim(revoked_secret, link=None) is None
    guest = new.claim(unused_secret, link="the guest's connection")
    assert guest is not None and (guest.visit_id, guest.clerk_id, guest.role, guest.label, guest.peer) == (
        VISIT, CLERK, "interpreter", "Dolmetscherin Türkisch", unused.peer)
    assert guest.state == "joining"
    await new.flush()
    assert new.claim(unused_secret, link=None) is None  # once
    assert (await new_leader(redis_client)).claim(unused_secret, link=None) is None  # and on the next leader
    assert await redis_client.hlen(LINKS_KEY) == 0


async def test_redis_holds_no_secret_and_forgets_the_links_after_the_grace(redis_client):
    links = RedisGuestLinks(redis_client, expiry_s=1.0)
    guest = links.create(VISIT, CLERK, "interpreter", "Dolmetscherin")
    await links.flush()
    stored = await redis_client.hgetall(LINKS_KEY)
    assert len(stored) == 1
    assert guest.secret.encode() not in b"".join([*stored, *stored.values()])  # what Redis holds opens nothing
    loaded = await new_leader(redis_client)
    assert [g.path for g in loaded.of_visit(VISIT)] == [None]  # no link to show again, but one to honour
    assert 0 < await redis_client.pttl(LINKS_KEY) <= 1000
    async with asyncio.timeout(5):
        while True:  # no central leads for the grace: the links go
            if not await redis_client.exists(LINKS_KEY):
                break
            await asyncio.sleep(0.1)


async def test_the_links_of_a_call_that_ends_leave_redis_with_it(redis_client):
    links = RedisGuestLinks(redis_client, 60)
    links.create(VISIT, CLERK, "interpreter", "")
    links.create(VISIT, CLERK, "colleague", "")
    other = links.create("v-2", CLERK, "interpreter", "")
    await links.flush()
    links.drop_call(VISIT)
    await links.flush()
    assert [g.peer for g in (await new_leader(redis_client)).all()] == [other.peer]


async def test_a_central_that_lost_the_lease_cannot_write_links(redis_client):
    old, new = Lease(redis_client, "old", ttl_s=0.3), Lease(redis_client, "new", ttl_s=5)
    assert await old.acquire()
    fenced = []
    links = RedisGuestLinks(redis_client, 60, lease=lambda: (old.key, old.value or ""),
                            on_fenced=lambda: fenced.append(1))
    writer = asyncio.get_running_loop().create_task(links.run())
    kept = links.create(VISIT, CLERK, "interpreter", "")
    await asyncio.sleep(0.4)
    assert await new.acquire()
    links.create("v-2", CLERK, "interpreter", "")
    async with asyncio.timeout(5):
        await writer  # the refused write ends the writer and tells the central
    assert fenced == [1]
    assert [g.peer for g in (await new_leader(redis_client)).all()] == [kept.peer]


async def test_a_guest_in_a_call_comes_back_to_the_next_leader_with_their_key_and_only_while_in_it(redis_client):
    old = RedisGuestLinks(redis_client, 60)
    first = old.create(VISIT, CLERK, "interpreter", "Dolmetscherin")
    second = old.create(VISIT, CLERK, "colleague", "")
    assert old.claim(first.secret, link="first's connection") is first
    assert old.claim(second.secret, link="second's connection") is second
    old.admit(second)
    old.admit(first)  # let in after the second: the second offers to the first
    first_key, second_key = first.key, second.key
    await old.flush()
    stored = await redis_client.hgetall(GUESTS_KEY)
    assert len(stored) == 2
    assert not any(key.encode() in b"".join([*stored, *stored.values()]) for key in (first_key, second_key))

    new = await new_leader(redis_client)
    back = new.rejoin(first_key)
    assert back is not None and (back.visit_id, back.clerk_id, back.peer, back.role, back.label, back.state) == (
        VISIT, CLERK, first.peer, "interpreter", "Dolmetscherin", "in_call")
    assert back.link is None  # its connection ended with the old leader; the hub binds the new one
    assert back.admitted > new.get(VISIT, second.peer).admitted
    assert new.rejoin(first_key) is None  # a key works once
    assert new.rejoin(back.key) is back  # the new one works
    new.drop_call(VISIT)  # the call is over: nothing of its guests stays
    await new.flush()
    assert await redis_client.hlen(GUESTS_KEY) == 0
    assert (await new_leader(redis_client)).rejoin(second_key) is None
