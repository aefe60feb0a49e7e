"""Valkey under Sentinel: central's clients (central/cluster/valkey_clients.py) follow the master the sentinels
name. A killed master costs the commands until the sentinels promote the replica; a master demoted on purpose
sends its clients on; the old master, back as a replica, gets nothing from central; and when no sentinel
answers, the journal says what to check. Real redis-server processes (tests/sentinel_servers.py)."""
from __future__ import annotations

import asyncio
import logging
import re

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from central.cluster import valkey_clients
from central.cluster.bus import subscribe
from tests.polling import until
from tests.sentinel_servers import DOWN_AFTER_MS

# central's journal writes every IP address as [address] (central/logfilter.py) once an app was made in this process
ADDRESS = r"(127\.0\.0\.1|\[address\])"
# The sentinels need DOWN_AFTER_MS to call the master down, then elect one of them and promote the replica.
FAILOVER_WITHIN_S = DOWN_AFTER_MS / 1000 + 9
# A restarted old master reports itself as master; the sentinels convert it once they have seen that for 8 s,
# and they ask a replica's role every 10 s: up to some 30 s; a sentinel that stalled over 2 s on a loaded machine
# waits 30 s more in TILT mode before it acts again.
CONVERTED_WITHIN_S = 90


async def written(client, key: str, value: str) -> bool:
    try:
        return bool(await client.set(key, value))
    except RedisError:  # ConnectionError, MasterNotFoundError, TimeoutError while the master is away
        return False


async def test_the_clients_follow_the_new_master_after_the_old_one_is_killed(sentinel_group, caplog):
    caplog.set_level(logging.INFO, logger="central.cluster.valkey_clients")
    client, subscriber = valkey_clients.async_clients(sentinel_group.url)
    keeper = valkey_clients.sync_client(sentinel_group.url)
    heard: list[bytes] = []
    subscribed = asyncio.Event()
    listening = asyncio.create_task(subscribe(subscriber, "amtsklingel:test", heard.append, subscribed.set))
    try:
        assert await written(client, "before", "1") and keeper.set("keeper", "1")
        old = sentinel_group.master_port()
        assert re.search(f"the sentinels name {ADDRESS}:{old} as the Valkey master of 'amtsklingel'", caplog.text)
        await asyncio.wait_for(subscribed.wait(), 5)

        sentinel_group.node(old).kill()
        # A subscription does not reconnect on its own (it would miss what was published meanwhile, unnoticed):
        # its reader hears that it was lost, as the edge and the leader must (central/cluster/edge.py).
        with pytest.raises(RedisConnectionError):
            await asyncio.wait_for(listening, 5)
        await until(lambda: written(client, "after", "2"), FAILOVER_WITHIN_S, every=0.1,
                    what="a write through the sentinel-backed client")
        new = sentinel_group.master_port()
        assert new != old and sentinel_group.role(new) == "master"
        assert re.search(f"\\(it was {ADDRESS}:{old}: a failover\\)", caplog.text)
        assert await asyncio.to_thread(keeper.set, "keeper", "2")  # the keeper thread's client follows as well
        assert await client.get("before") == b"1"  # replicated before the kill
        # The subscriber connects to the new master too: a subscription there hears what is published.
        pubsub = subscriber.pubsub()
        await pubsub.subscribe("amtsklingel:test")
        assert (await pubsub.get_message(timeout=5))["type"] == "subscribe"
        assert await client.publish("amtsklingel:test", "hello") == 1
        assert (await pubsub.get_message(timeout=5))["data"] == b"hello"
        await pubsub.aclose()

        # The old machine comes back (as its own master, empty: nothing was saved) and the sentinels make it a
        # replica of the new master. Central never writes to it: none of its connections went there.
        sentinel_group.restart(sentinel_group.node(old))
        await sentinel_group.until_replica(old, CONVERTED_WITHIN_S)
        assert await written(client, "later", "3")
        with sentinel_group.data_client(old) as direct:
            await until(lambda: direct.get("later") == b"3", 10, what="the write replicated to the old master")
            assert "errorstat_READONLY" not in direct.info("errorstats")
            assert not [c for c in direct.client_list() if c["name"] == valkey_clients.CLIENT_NAME]
    finally:
        listening.cancel()
        keeper.close()
        await valkey_clients.aclose(client, subscriber)


@pytest.mark.parametrize("group", ["sentinel_group", "tls_sentinel_group"])
async def test_a_master_demoted_on_purpose_sends_its_clients_to_the_new_one(group, request):
    """SENTINEL FAILOVER, as an admin runs it before maintenance: the old master lives on as a replica. Its
    clients must not stay on it (READONLY): the sentinels cut them, and redis-py asks the sentinels again.
    Also over TLS (rediss+sentinel://, client certificates demanded): the sentinels tell the new master's
    address, which the nodes' certificates name."""
    sentinel_group = request.getfixturevalue(group)
    client, subscriber = valkey_clients.async_clients(sentinel_group.url)
    keeper = valkey_clients.sync_client(sentinel_group.url)
    following = asyncio.create_task(valkey_clients.follow_master(client, subscriber))  # as central runs it
    try:
        old = sentinel_group.master_port()
        assert await written(client, "before", "1") and keeper.set("keeper", "1")
        with sentinel_group.sentinel_client() as sentinel:
            assert sentinel.sentinel_failover("amtsklingel")
        await until(lambda: sentinel_group.master_port() not in (None, old), FAILOVER_WITHIN_S,
                    what="the sentinels promoting the replica")
        new = sentinel_group.master_port()
        # The old master still accepts writes until the sentinels turn it into a replica (some 8 s): what lands
        # there is lost. Central's connections leave it within FOLLOW_EVERY_S of the switch.
        with sentinel_group.data_client(new) as direct:
            async def lands_on_the_new_master(key: str) -> bool:
                return await written(client, key, "2") and direct.get(key) == b"2"

            await until(lambda: lands_on_the_new_master("after"), valkey_clients.FOLLOW_EVERY_S + 2, every=0.1,
                        what="a write through the sentinel-backed client reaching the new master")

            def keeper_lands() -> bool:
                try:
                    valkey_clients.follow_master_sync(keeper)  # as the keeper does before each renewal
                    return bool(keeper.set("keeper", "2")) and direct.get("keeper") == b"2"
                except RedisError:
                    return False
            await until(lambda: asyncio.to_thread(keeper_lands), 2, every=0.1, what="the keeper's write")
        assert sentinel_group.role(old) == "master"  # not converted yet: it was the clients that moved
    finally:
        following.cancel()
        keeper.close()
        await valkey_clients.aclose(client, subscriber)


async def test_when_no_sentinel_answers_the_journal_says_what_to_check(caplog):
    from tests.servers import _free_port

    url = f"redis+sentinel://:pw@127.0.0.1:{_free_port()},127.0.0.1:{_free_port()}/amtsklingel"
    client, subscriber = valkey_clients.async_clients(url)
    try:
        with pytest.raises(RedisConnectionError, match="No master found for 'amtsklingel': .*Error 111") as caught:
            await client.ping()
        assert "<redis" not in str(caught.value)  # where the keeper or the edge log it, too
    finally:
        await valkey_clients.aclose(client, subscriber)
    assert re.search(f"no sentinel names a Valkey master for service 'amtsklingel' of the sentinels {ADDRESS}:",
                     caplog.text)
    assert "Error 111 connecting to" in caplog.text and "<redis" not in caplog.text  # the reason, said briefly
    assert "check that the sentinels run and are reachable from here" in caplog.text
    assert "pw" not in caplog.text.replace("password", "")


async def test_a_master_cut_off_from_its_replicas_refuses_writes_with_min_replicas_to_write():
    """docs/deploy.md's protection against a cut-off old master (two replicas, min-replicas-to-write 1,
    min-replicas-max-lag 2): once no replica has answered for 3 s the master refuses writes (Valkey looks once
    a second), so a leader connected to it cannot renew its lease and steps down, before the sentinels promote
    anyone (down-after-milliseconds 8000). Here both replicas stop answering; one is enough to write again."""
    from redis.exceptions import ResponseError

    from tests.sentinel_servers import sentinel_group

    with sentinel_group(replicas=2, min_replicas_to_write=1, down_after_ms=30000) as group:
        client, subscriber = valkey_clients.async_clients(group.url)
        replicas = [n for n in group.nodes if n.port != group.master_port()]
        try:
            assert await client.set("before", "1")
            for replica in replicas:
                replica.pause()
            cut_off = asyncio.get_running_loop().time()

            async def refused() -> bool:
                try:
                    await client.set("during", "1")
                except ResponseError as exc:
                    return str(exc).startswith("NOREPLICAS")
                return False
            await until(refused, 6, every=0.1, what="the master refusing writes without a replica")
            refused_after_s = asyncio.get_running_loop().time() - cut_off
            print(f"cut off from its replicas: the master refuses writes after {refused_after_s:.1f} s")  # noqa: T201
            assert 1.5 <= refused_after_s <= 5, refused_after_s
            replicas[0].resume()
            await until(lambda: written(client, "after", "1"), 5, every=0.1, what="writes with one replica back")
        finally:
            for replica in replicas:
                replica.resume()
            await valkey_clients.aclose(client, subscriber)
