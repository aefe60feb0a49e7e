"""Several centrals: the leading one killed while 100 citizens wait.

PostgreSQL, Redis (no persistence), two ``python -m central serve`` processes and HAProxy are
started on loopback, as tests/central/test_failover.py starts them (the scenario is shared:
tests/central/failover_scenario.py). ``--failover-kiosks`` (100) kiosks join one waiting room one
after the other through HAProxy, a clerk's console picks up one more citizen, whose call goes on.
Then the leader is killed (SIGKILL), and later the new leader is stopped (SIGTERM): every kiosk and
the console reconnect through HAProxy (a standby closes with 1013, HAProxy answers 503 while no
central leads): the kiosks with the appliance's own back-off (``appliance/call/backoff.py``: 0.75 s,
doubling, jittered), resuming with their tokens; the console, a probe, every 0.1 s.

Figures (of the kill; the clean stop's with ``_sigterm``):

- ``failover_places_kept``: waiting citizens back in exactly their place, of ``--failover-kiosks``.
- ``failover_recovery_s``: kill -> a console connecting through HAProxy sees every waiting visit in
  its place (the standby's lease wait, its takeover, HAProxy's checks).
- ``failover_kiosks_back_s``: kill -> the last kiosk has resumed its visit through HAProxy.
- ``failover_standby_leads_s``: kill -> the standby's own /health/leader answers 200 (the lease ran out
  and was taken, the rooms loaded); the rest of the recovery is HAProxy's checks and the reconnects.
- ``failover_relayed_before``: of the sockets, how many the standby relayed to the leader before the kill
  (HAProxy spreads them over both).

And, before the kill, what the standby's relaying (central/cluster/edge.py) costs, with two more kiosks
pinging ``--failover-relay-frames`` times, one straight to the leader and one through the standby
(bench/_relay_cost.py): ``relay_ping_rtt_ms_p50``/``_p99`` and ``direct_ping_rtt_ms_p50``/``_p99``,
``relay_added_ms_per_frame_p50`` (half the difference: a ping and its pong each cross the relay once),
``relay_cpu_us_per_frame`` (both centrals and Valkey, relayed less direct) and ``relay_edge_cpu_us_per_frame``.
"""
from __future__ import annotations

import signal
import statistics
from pathlib import Path

from bench._common import BenchError, emit, note, run_in_tmp

NAME = "failover"


def add_arguments(parser) -> None:
    group = parser.add_argument_group("failover")
    group.add_argument("--failover-kiosks", type=int, default=100, help="waiting kiosks (default 100)")
    group.add_argument("--failover-relay-frames", type=int, default=2000,
                       help="pings to time through the standby's relay and straight to the leader (default 2000)")


async def _run(args, tmp: Path) -> int:
    from bench import _relay_cost
    from tests import servers
    from tests.central.failover_scenario import client_session, cluster, fail_over, hang_up, set_the_scene

    try:
        pg, redis = servers.start_postgresql(), servers.start_redis()
    except servers.ServerUnavailable as exc:
        raise BenchError(str(exc)) from None
    try:
        async with cluster(tmp, pg, redis, args.failover_kiosks + 2) as c, client_session() as session:
            scene = await set_the_scene(c, session, args.failover_kiosks)
            cost = await _relay_cost.measure(c, session, c.kiosk_tokens[-2:], redis.process.pid,
                                             args.failover_relay_frames)
            note(f"failover: {args.failover_kiosks} waiting, one in a call; killing the leader")
            killed = await fail_over(c, session, scene, signal.SIGKILL)
            note("failover: stopping the new leader cleanly")
            stopped = await fail_over(c, session, scene, signal.SIGTERM)
            hung_up = await hang_up(scene)
            await scene.clerk.close()
    finally:
        redis.stop()
        pg.stop()
    note(f"relay: a ping's round trip {statistics.median(cost.relayed.rtt_ms):.2f} ms through the standby, "
         f"{statistics.median(cost.direct.rtt_ms):.2f} ms straight to the leader (p50 of {cost.frames})")
    emit("relay_ping_rtt_ms_p50", statistics.median(cost.relayed.rtt_ms), "ms")
    emit("relay_ping_rtt_ms_p99", _relay_cost.p99(cost.relayed.rtt_ms), "ms")
    emit("direct_ping_rtt_ms_p50", statistics.median(cost.direct.rtt_ms), "ms")
    emit("direct_ping_rtt_ms_p99", _relay_cost.p99(cost.direct.rtt_ms), "ms")
    emit("relay_added_ms_per_frame_p50", cost.added_ms_p50, "ms")
    emit("relay_cpu_us_per_frame", cost.added_cpu_us_per_frame, "us")
    emit("relay_edge_cpu_us_per_frame", cost.edge_cpu_us_per_frame, "us")
    emit("failover_relayed_before", killed.relayed_before, "sockets")
    for change, suffix in ((killed, ""), (stopped, "_sigterm")):
        note(f"{change.signal}: {change.places_kept} of {change.waiting} in their place, order kept: "
             f"{change.order_kept}, the standby leads after {change.leads_after_s:.2f} s, a console through HAProxy "
             f"sees all after {change.recovery_s:.2f} s, last kiosk back after "
             f"{change.kiosks_back_s:.2f} s, call given back: {change.call_given_back}, ended: {change.ended}")
        emit(f"failover_places_kept{suffix}", change.places_kept, "visits")
        emit(f"failover_recovery_s{suffix}", change.recovery_s, "s")
        emit(f"failover_kiosks_back_s{suffix}", change.kiosks_back_s, "s")
        emit(f"failover_standby_leads_s{suffix}", change.leads_after_s, "s")
    note(f"the call, after both changes, ended by: {hung_up}")
    ok = all(c.places_kept == c.waiting and c.order_kept and c.call_given_back and not c.ended
             for c in (killed, stopped)) and hung_up == "hangup_staff"
    return 0 if ok else 1


def run(args) -> int:
    if args.failover_kiosks < 1 or args.failover_relay_frames < 1:
        raise SystemExit("--failover-kiosks and --failover-relay-frames must be at least 1")
    return run_in_tmp(NAME, lambda tmp: _run(args, tmp), "amtsklingel-failover-")
