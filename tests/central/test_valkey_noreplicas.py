"""A Valkey master cut off from its replicas refuses writes (``min-replicas-to-write``): the leader connected to it
cannot renew its lease and steps down, its journal says that Valkey refused the writes for want of a replica (not
that it was unreachable: an admin must look at the replicas and the network between the Valkey machines), the
waiting rooms' writes meanwhile are refused without a traceback, and once a replica answers again a central leads.
docs/deploy.md, "`min-replicas-to-write`: two replicas, or the trade-off". Real redis-server and PostgreSQL; a
master with one replica is enough (no sentinels: nobody is to be promoted here)."""
from __future__ import annotations

import asyncio
import logging

import aiohttp

from central.cluster.lease import MARGIN_S, TTL_S
from tests.central.leadership_helpers import seeded_database, two_centrals, until_status
from tests.polling import until
from tests.sentinel_servers import PASSWORD, sentinel_group

MAX_LAG_S = 2  # min-replicas-max-lag, as docs/deploy.md recommends
# docs/deploy.md: the master refuses writes once no replica has answered for max-lag + 1 s (Valkey looks once a
# second), and the leader steps down at most ttl - margin (2.5 s) after its last renewal. The headroom is for a
# loaded two-core machine: these bounds detect a failure, the figures themselves are in docs/benchmarks.md.
REFUSES_WITHIN_S = MAX_LAG_S + 1 + 1
HEADROOM_S = 5
STEPS_DOWN_WITHIN_S = REFUSES_WITHIN_S + (TTL_S - MARGIN_S) + HEADROOM_S
LEADS_AGAIN_WITHIN_S = 10  # the replica answers within a second of SIGCONT, then a standby's poll and takeover
REFUSAL = "Valkey refuses writes: its master has no replica in reach (min-replicas-to-write; NOREPLICAS "
ADVICE = "Check the replicas and the network between the Valkey machines"


async def queue_visit(session: aiohttp.ClientSession, url: str, token: str):
    """A kiosk at ``url`` with a citizen waiting: the socket and the visit.queued message."""
    kiosk = await session.ws_connect(url.replace("http", "ws") + "/ws/kiosk",
                                     headers={"Authorization": f"Bearer {token}"})
    assert (await kiosk.receive_json())["type"] == "welcome"
    await kiosk.send_json({"type": "visit.request", "department": "buergerbuero"})
    while (queued := await kiosk.receive_json(timeout=5))["type"] != "visit.queued":
        pass
    return kiosk, queued


async def test_a_leader_whose_master_has_no_replica_steps_down_says_why_and_a_central_leads_again(request, caplog):
    caplog.set_level(logging.WARNING, logger="central")
    database_url, credentials = await seeded_database(request.getfixturevalue("postgresql_server"))
    with sentinel_group(1, sentinels=0, min_replicas_to_write=1, min_replicas_max_lag=MAX_LAG_S) as group:
        master, replica = group.nodes
        redis_url = f"redis://:{PASSWORD}@127.0.0.1:{master.port}/0"
        async with two_centrals(database_url, redis_url) as (runners, (leader, standby)), \
                aiohttp.ClientSession() as session:
            old, new = runners[0].app, runners[1].app
            loop = asyncio.get_running_loop()
            replica.pause()  # the master hears nothing from its only replica, as if the network between them broke
            paused = loop.time()
            try:
                # The first renewal the master refuses: from now on every write is refused, the rooms' too.
                await until(lambda: "the lease could not be renewed (Valkey refuses writes" in caplog.text,
                            REFUSES_WITHIN_S + HEADROOM_S, what="the master refusing the leader's renewal")
                # A citizen arrives now: the leader queues the visit in memory, but cannot write it through.
                kiosk, queued = await queue_visit(session, leader, credentials["kiosk_token"])
                await until(lambda: "the waiting rooms could not be written to Redis (Valkey refuses writes"
                            in caplog.text, 5, what="the rooms' write refused")
                await asyncio.wait_for(old["lost_lead"].wait(), STEPS_DOWN_WITHIN_S - (loop.time() - paused))
                stepped_down_s = loop.time() - paused
                print(f"master cut off from its replica: the leader stepped down after {stepped_down_s:.1f} s")  # noqa: T201
                async with asyncio.timeout(5):  # the kiosk is sent away to reconnect (1012), as at every step-down
                    while (await kiosk.receive()).type is aiohttp.WSMsgType.TEXT:
                        pass
                assert kiosk.close_code == aiohttp.WSCloseCode.SERVICE_RESTART
                stopped = [r.getMessage() for r in caplog.records if r.getMessage().startswith("stopped leading:")]
                assert len(stopped) == 1 and stopped[0].startswith("stopped leading: " + REFUSAL), stopped
                assert ADVICE in stopped[0] and "unreachable" not in stopped[0], stopped
                # The standby cannot take the lease while the master refuses writes, and says why in the same words.
                await until(lambda: "standby: cannot ask Redis for the lease (" + REFUSAL in caplog.text, 5,
                            what="the standby's complaint")
                async with session.get(standby + "/health/leader") as r:
                    assert r.status == 503
            finally:
                replica.resume()
            leads_again_s = await until_status(standby, 200, timeout=LEADS_AGAIN_WITHIN_S)
            print(f"the replica back: a central leads again after {leads_again_s:.1f} s")  # noqa: T201
            assert new["leadership"].epoch == old["leadership"].epoch + 1
            # The visit that was never written comes back with the kiosk's signed resume token.
            kiosk = await session.ws_connect(standby.replace("http", "ws") + "/ws/kiosk",
                                             headers={"Authorization": f"Bearer {credentials['kiosk_token']}"})
            assert (await kiosk.receive_json())["type"] == "welcome"
            await kiosk.send_json({"type": "visit.resume", "visit_id": queued["visit_id"],
                                   "resume_token": queued["resume_token"]})
            while (resumed := await kiosk.receive_json(timeout=5))["type"] == "kiosk.settings":
                pass
            assert resumed["state"] == "waiting" and resumed["position"] == 1, resumed
    # A clear step-down, no traceback: nothing in the journal carries an exception.
    assert not [r for r in caplog.records if r.exc_info], [r.getMessage() for r in caplog.records if r.exc_info]
    assert "leading failed" not in caplog.text and "keeper failed" not in caplog.text
    # A refused pipeline's error repeats its arguments, the visits: the journal gets the refusal without them.
    assert queued["visit_id"] not in caplog.text
