"""Two centrals behind HAProxy on Valkey under Sentinel, citizens waiting and one in a call, and the Valkey master
killed (SIGKILL): the scenario of tests/central/test_valkey_failover.py, whose figures
``./build.sh bench --only valkey_failover`` prints (bench/valkey_failover.py).

The leader cannot renew its lease and steps down (exit 75); as systemd would, the scenario starts every central
that exits again. The sentinels promote a replica, a central takes the lease there, and every kiosk and the
console come back through HAProxy. Recorded then: the new master's replicas, whether it takes a write, and (with
``guest_links``) what the clerk's guest links made before the kill do after it. Then the old master is started
again (empty, as its own master) until the sentinels have made it a replica. Every server is real and on
loopback; every wait has a timeout.
"""
from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from central.cluster import valkey_clients
from central.cluster.valkey_clients import CLIENT_NAME
from tests import servers
from tests.central.central_processes import CentralProcess, Scene, waiting_ids
from tests.central.failover_scenario import (
    DEPARTMENT,
    RECOVERY_TIMEOUT_S,
    Cluster,
    client_session,
    cluster,
    open_guest_link,
    set_the_scene,
    three_guest_links,
)
from tests.polling import until
from tests.sentinel_servers import SentinelGroup

EXIT_STANDBY = 75  # a central that lost the lease exits with this; systemd starts it again
# The sentinels turn a returning old master into a replica once they have seen it report itself master for 8 s;
# they ask a replica's role every 10 s: up to some 30 s, more on a loaded machine.
CONVERTED_TIMEOUT_S = 90.0  # with 30 s for a sentinel in TILT mode (a stall over 2 s on a loaded machine)


@dataclass
class MasterKilled:
    """What killing the Valkey master did to the citizens, the clerk and the centrals."""

    waiting: int
    places_kept: int        # waiting citizens back in their own place (position and state)
    order_kept: bool        # the console's queue afterwards lists every visit in the original order
    call_resumed: bool      # the calling kiosk resumed in_call
    ended: int              # visits that ended on the way (must be 0)
    exits: list[tuple[str, int]]  # (central, exit status) of every central that exited, in order
    old_leader: str
    leads_after_s: float    # kill -> some central's own /health/leader answers 200 (on the new master)
    recovery_s: float       # kill -> a console through HAProxy sees the queue
    kiosks_back_s: float    # kill -> the last kiosk has resumed through HAProxy
    relayed_after: int      # of the sockets back, how many the central that does not lead relays to the one that does
    old_master: int         # ports of the data nodes
    new_master: int
    # The new master before the old one is back: its replicas (INFO replication; with two replicas the one left,
    # which it needs for min-replicas-to-write 1) and whether it took a write through the sentinels.
    new_master_replicas: int
    new_master_good_replicas: int | None  # min_slaves_good_slaves: None without min-replicas-to-write
    new_master_writes: bool
    # With guest_links: what the interpreter's link made before the kill answered when opened after it, twice
    # (guest.welcome, then guest.refused: once), and the used and the revoked link.
    guest_links: dict[str, str | list[str]] | None
    replica_again_s: float  # the old master started again -> the sentinels made it a replica
    readonly_errors: int    # commands the old master refused as a replica (someone wrote to it)
    central_connections_to_old: int  # central's connections (CLIENT LIST) on the old master afterwards
    journals: dict[str, str]


async def keep_running(central: CentralProcess, exits: list[tuple[str, int]]) -> None:
    """What systemd does for central (Restart=always): a central that exited is started again, as a standby."""
    async with aiohttp.ClientSession() as probe:
        while True:
            exits.append((central.name, await asyncio.to_thread(central.proc.wait)))
            await central.start(probe, "/health/leader", (200, 503))


async def any_leads(c: Cluster, session: aiohttp.ClientSession) -> bool:
    with contextlib.suppress(AssertionError):
        return bool(await c.leader(session))
    return False


async def console_sees(scene: Scene, started: float) -> tuple[float, list[str]]:
    """The clerk's console, reconnecting through HAProxy until a central answers: how long after ``started``
    (monotonic), and the waiting visits it lists."""

    async def snapshot() -> dict | None:  # HAProxy answers 503 until a central leads; the login stays valid
        try:
            return await scene.clerk.connect()
        except (aiohttp.ClientError, AssertionError, TimeoutError):
            return None
    seen = await until(snapshot, RECOVERY_TIMEOUT_S, every=0.1, what="the console connected through HAProxy")
    return time.monotonic() - started, waiting_ids(seen, DEPARTMENT)


async def new_master_writes(valkey: SentinelGroup) -> bool:
    """A write through the sentinels, as central's: the promoted master accepts it (no NOREPLICAS)."""
    from redis.exceptions import RedisError

    client, subscriber = valkey_clients.async_clients(valkey.url)
    try:
        return bool(await client.set("amtsklingel:test:after-failover", "1"))
    except RedisError:
        return False
    finally:
        await valkey_clients.aclose(client, subscriber)


async def kill_the_master(tmp: Path, pg: servers.PostgreSQL, valkey: SentinelGroup, waiting: int, *,
                          guest_links: bool = False) -> MasterKilled:
    async with cluster(tmp, pg, valkey, waiting) as c, client_session() as session:
        scene = await set_the_scene(c, session, waiting)
        links = await three_guest_links(c, session, scene, valkey.url) if guest_links else None
        old_leader = await c.leader(session)
        everyone = [scene.calling, *scene.waiting]
        exits: list[tuple[str, int]] = []
        systemd = asyncio.gather(*(keep_running(central, exits) for central in c.centrals))
        try:
            old = valkey.master_port()
            closed = asyncio.gather(*(k.closed(timeout=RECOVERY_TIMEOUT_S) for k in everyone))
            killed_at = time.monotonic()
            valkey.node(old).kill()
            await closed  # the leader stepped down, the other central closed what it relayed (1012)
            await scene.clerk.ws.close()

            async def someone_leads() -> float:
                await until(lambda: any_leads(c, session), RECOVERY_TIMEOUT_S, every=0.05,
                            what="a central leading on the new Valkey master")
                return time.monotonic() - killed_at

            async with asyncio.timeout(RECOVERY_TIMEOUT_S):
                leads_after_s, (recovery_s, order), *resumed = await asyncio.gather(
                    someone_leads(), console_sees(scene, killed_at),
                    *(k.resume_retrying(RECOVERY_TIMEOUT_S) for k in everyone))
            kiosks_back_s = time.monotonic() - killed_at
            new = valkey.master_port()
            leader = await c.leader(session)
            edge = next(central for central in c.centrals if central is not leader)

            async def edge_relays() -> bool:  # /health/ws: 200 once it relays to a leader that listens
                with contextlib.suppress(aiohttp.ClientError):
                    async with session.get(edge.url + "/health/ws") as r:
                        return r.status == 200
                return False
            await until(edge_relays, 10, every=0.1, what="the other central relaying to the new leader")
            relayed_after = await c.relayed(session, edge)
            with valkey.data_client(new) as direct:
                replication = direct.info("replication")
            writes = await new_master_writes(valkey)
            opened = None
            if links is not None:  # through HAProxy, to either central: the other one relays it
                opened = {"unused": [await open_guest_link(c, session, links.unused) for _ in range(2)],
                          "used": await open_guest_link(c, session, links.used),
                          "revoked": await open_guest_link(c, session, links.revoked)}

            # The old machine comes back, as an empty master; the sentinels make it a replica of the new one.
            started = time.monotonic()
            await asyncio.to_thread(valkey.restart, valkey.node(old))
            await valkey.until_replica(old, CONVERTED_TIMEOUT_S)
            replica_again_s = time.monotonic() - started
            with valkey.data_client(old) as direct:
                readonly = direct.info("errorstats").get("errorstat_READONLY", {}).get("count", 0)
                to_old = sum(cl["name"] == CLIENT_NAME for cl in direct.client_list())
        finally:
            await scene.clerk.close()
            systemd.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await systemd
            for central in c.centrals:
                central.kill_if_running()  # the threads waiting for them end with them
    places_kept = sum(r["state"] == "waiting" and r["position"] == place for place, r in enumerate(resumed[1:], 1))
    return MasterKilled(
        waiting, places_kept, order == scene.order, resumed[0]["state"] == "in_call",
        sum(m["type"] == "visit.ended" for k in everyone for m in k.seen), exits, old_leader.name,
        leads_after_s, recovery_s, kiosks_back_s, relayed_after, old, new, replication["connected_slaves"],
        replication.get("min_slaves_good_slaves"), writes, opened, replica_again_s, readonly, to_old,
        {central.name: central.log.read_text() for central in c.centrals})
