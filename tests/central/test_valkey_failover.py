"""Two real centrals behind HAProxy on Valkey under Sentinel (a master, a replica, three sentinels): the Valkey
master is killed (SIGKILL). The leader cannot renew its lease and steps down (exit 75; the test restarts it as
systemd would), the sentinels promote the replica, the clients find it by asking them, a central takes the lease
and every kiosk and the console come back through HAProxy: every waiting citizen in their place and order, the
call going on. The old master, started again, becomes a replica, and no central writes to it
(docs/decisions/0008-several-centrals.md, docs/deploy.md)."""
from __future__ import annotations

import asyncio
import contextlib
import time

import aiohttp

from central.cluster.valkey_clients import CLIENT_NAME
from tests import sentinel_servers
from tests.central.central_processes import CentralProcess, waiting_ids
from tests.central.failover_scenario import DEPARTMENT, RECOVERY_TIMEOUT_S, client_session, cluster, set_the_scene
from tests.polling import until

WAITING = 20
# Longer than the lease (3 s ttl, the leader stops 0.5 s before it): the old leader has stopped before the sentinels
# promote anyone, as docs/deploy.md asks of production (which allows more, for a loaded network).
DOWN_AFTER_MS = 3000
EXIT_STANDBY = 75  # a central that lost the lease exits with this; systemd starts it again


async def keep_running(central: CentralProcess, exits: list[tuple[str, int]]) -> None:
    """What systemd does for central (Restart=always): a central that exited is started again, as a standby."""
    async with aiohttp.ClientSession() as probe:
        while True:
            exits.append((central.name, await asyncio.to_thread(central.proc.wait)))
            await central.start(probe, "/health/leader", (200, 503))


async def test_every_waiting_citizen_keeps_their_place_when_the_valkey_master_dies(request, tmp_path):
    pg = request.getfixturevalue("postgresql_server")
    with sentinel_servers.sentinel_group(down_after_ms=DOWN_AFTER_MS) as valkey:
        async with cluster(tmp_path, pg, valkey, WAITING) as c, client_session() as session:
            scene = await set_the_scene(c, session, WAITING)
            leader = await c.leader(session)
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
                await until(lambda: exits, 10, what="the old leader exiting")  # it closes its sockets first
                assert exits[0] == (leader.name, EXIT_STANDBY), exits

                async def someone_leads() -> float:
                    await until(lambda: any_leads(c, session), RECOVERY_TIMEOUT_S, every=0.05,
                                what="a central leading on the new Valkey master")
                    return time.monotonic() - killed_at

                async with asyncio.timeout(RECOVERY_TIMEOUT_S):
                    leads_after_s, console, *resumed = await asyncio.gather(
                        someone_leads(), console_sees(scene, killed_at), *(k.resume_retrying(RECOVERY_TIMEOUT_S) for k in everyone))
                kiosks_back_s = time.monotonic() - killed_at
                new = valkey.master_port()
                assert new != old
                print(f"valkey master killed: a central leads after {leads_after_s:.1f} s, "  # noqa: T201 - the figure
                      f"the console sees the queue after {console[0]:.1f} s, all kiosks back after {kiosks_back_s:.1f} s")
                assert console[1] == scene.order, "the console's queue is not in the original order"
                assert resumed[0]["state"] == "in_call"
                assert [(r["state"], r["position"]) for r in resumed[1:]] == [
                    ("waiting", place) for place in range(1, WAITING + 1)]
                assert not [m for k in everyone for m in k.seen if m["type"] == "visit.ended"]

                # The old machine comes back, as an empty master; the sentinels make it a replica of the new one.
                valkey.restart(valkey.node(old))
                await until(lambda: valkey.role(old) == "slave", 30, every=0.2, what="the old master now a replica")
                with valkey.data_client(old) as direct:
                    assert "errorstat_READONLY" not in direct.info("errorstats")
                    assert not [cl for cl in direct.client_list() if cl["name"] == CLIENT_NAME]
            finally:
                await scene.clerk.close()
                systemd.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await systemd
                for central in c.centrals:
                    central.kill_if_running()  # the threads waiting for them end with them
        logs = {central.name: central.log.read_text() for central in c.centrals}
    for name, log in logs.items():
        assert "Traceback" not in log, f"{name}:\n" + log[max(0, log.find("Traceback") - 2000):]
    journal = "".join(logs.values())
    # What an admin reads: which master, that the sentinels were asked, why the leader stepped down.
    # (Addresses read [address] in central's journal, decision 0003; the port tells the nodes apart here.)
    assert f":{new} as the Valkey master of 'amtsklingel' (it was [address]:{old}: a failover)" in journal
    assert "no sentinel names a Valkey master for service 'amtsklingel'" in journal  # while they chose
    assert "stopped leading: Redis unreachable" in logs[leader.name]


async def any_leads(c, session: aiohttp.ClientSession) -> bool:  # noqa: ANN001 - the scenario's Cluster
    with contextlib.suppress(AssertionError):
        return bool(await c.leader(session))
    return False


async def console_sees(scene, started: float) -> tuple[float, list[str]]:  # noqa: ANN001 - the scenario's Scene
    """The clerk's console, reconnecting through HAProxy until a central answers: how long after ``started``
    (monotonic), and the waiting visits it lists."""

    async def snapshot() -> dict | None:  # HAProxy answers 503 until a central leads; the login stays valid
        try:
            return await scene.clerk.connect()
        except (aiohttp.ClientError, AssertionError, TimeoutError):
            return None
    seen = await until(snapshot, RECOVERY_TIMEOUT_S, every=0.1, what="the console connected through HAProxy")
    return time.monotonic() - started, waiting_ids(seen, DEPARTMENT)
