"""Two real centrals behind a real HAProxy, sharing a real PostgreSQL and Redis: the leader is killed
(SIGKILL), later the new leader is stopped (SIGTERM). HAProxy spreads the sockets over both centrals, and the
one that does not lead relays its share to the leader. 100 citizens wait and one is in a call; after each
change every kiosk and the console are back through HAProxy, every citizen in their place and order,
and the call goes on and can be hung up; a guest link the clerk made before the kill opens the call after
it, once, and a used or revoked one does not (docs/decisions/0008-several-centrals.md)."""
from __future__ import annotations

import signal

from tests.central.failover_scenario import (
    client_session,
    cluster,
    fail_over,
    hang_up,
    open_guest_link,
    set_the_scene,
    three_guest_links,
)

WAITING = 100


async def test_every_waiting_citizen_keeps_their_place_when_the_leading_central_dies(request, tmp_path):
    pg, redis = request.getfixturevalue("postgresql_server"), request.getfixturevalue("redis_server")
    async with cluster(tmp_path, pg, redis, WAITING) as c, client_session() as session:
        scene = await set_the_scene(c, session, WAITING)
        links = await three_guest_links(c, session, scene, redis.url)
        first_leader = await c.leader(session)

        killed = await fail_over(c, session, scene, signal.SIGKILL)
        assert killed.returncode == -signal.SIGKILL
        # HAProxy spread the sockets over both: the standby relayed about half of them to the leader; it
        # closed them (1012) when the leader died, and they came back, too.
        assert WAITING // 4 < killed.relayed_before < WAITING, killed
        # A killed leader closes nothing: the kiosks it served lost their connection. The standby closed
        # those it relayed with 1012 (the console, if it was one of them, is not counted here).
        assert killed.relayed_before - 1 <= killed.closed_1012 <= killed.relayed_before, killed
        assert await c.leader(session) is not first_leader
        assert await open_guest_link(c, session, links.used) == "guest.refused"
        assert await open_guest_link(c, session, links.revoked) == "guest.refused"
        assert await open_guest_link(c, session, links.unused) == "guest.welcome"  # the interpreter joins
        stopped = await fail_over(c, session, scene, signal.SIGTERM)
        assert await open_guest_link(c, session, links.unused) == "guest.refused"  # it was used
        assert stopped.returncode == 0
        assert await c.leader(session) is first_leader  # back as a standby, it took over again

        for change in (killed, stopped):
            assert change.places_kept == WAITING, change
            assert change.order_kept, change
            assert change.call_given_back and change.call_resumed, change
            assert change.ended == 0, change
        assert await hang_up(scene) == "hangup_staff"
        await scene.clerk.close()
    for central in c.centrals:
        log = central.log.read_text()
        assert "Traceback" not in log, f"{central.name}:\n" + log[max(0, log.find("Traceback") - 2000):]
