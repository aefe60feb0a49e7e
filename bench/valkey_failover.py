"""Several centrals on Valkey under Sentinel: the Valkey master killed while citizens wait.

PostgreSQL, a Valkey master with ``--valkey-replicas`` replicas (1; with 2 or more ``min-replicas-to-write 1`` and
``min-replicas-max-lag 2``, docs/deploy.md's recommended layout, else 0) and three sentinels (redis-server,
tests/sentinel_servers.py), two
``python -m central serve`` with ``redis_url = "redis+sentinel://..."`` and HAProxy, all on loopback, as
tests/central/test_valkey_failover.py starts them (the scenario is shared:
tests/central/valkey_failover_scenario.py). ``--valkey-failover-kiosks`` (100) citizens wait and one is in a
call; then the master is killed (SIGKILL). The leader steps down (exit 75) and is started again, the sentinels
promote a replica after ``--valkey-down-after-ms`` (5000, docs/deploy.md with one replica; 8000 with two), a
central leads on it, and every kiosk (with the appliance's back-off) and the console come back through HAProxy.

Figures:

- ``valkey_failover_places_kept``: waiting citizens back in exactly their place.
- ``valkey_failover_leads_s``: kill -> some central's /health/leader answers 200 (on the new master).
- ``valkey_failover_recovery_s``: kill -> a console through HAProxy sees the queue.
- ``valkey_failover_kiosks_back_s``: kill -> the last kiosk has resumed.
- ``valkey_old_master_replica_s``: the old master started again -> the sentinels made it a replica.
- ``valkey_failover_relayed_after``: of the sockets back, how many the central that does not lead relays to the
  one that does (HAProxy spreads them over both again).
"""
from __future__ import annotations

from pathlib import Path

from bench._common import BenchError, emit, note, run_in_tmp

NAME = "valkey_failover"


def add_arguments(parser) -> None:
    group = parser.add_argument_group("valkey_failover")
    group.add_argument("--valkey-failover-kiosks", type=int, default=100, help="waiting kiosks (default 100)")
    group.add_argument("--valkey-down-after-ms", type=int, default=5000,
                       help="the sentinels' down-after-milliseconds (default 5000)")
    group.add_argument("--valkey-replicas", type=int, default=1,
                       help="replicas of the master (default 1; with 2 or more min-replicas-to-write 1)")


async def _run(args, tmp: Path) -> int:
    from tests import sentinel_servers, servers
    from tests.central.valkey_failover_scenario import kill_the_master

    # docs/deploy.md: min-replicas-to-write 1 only where a failover leaves the new master a replica
    min_to_write = 1 if args.valkey_replicas >= 2 else 0
    try:
        pg = servers.start_postgresql()
        valkey = sentinel_servers.start_sentinel_group(args.valkey_replicas, min_replicas_to_write=min_to_write,
                                                       down_after_ms=args.valkey_down_after_ms)
    except servers.ServerUnavailable as exc:
        raise BenchError(str(exc)) from None
    try:
        note(f"valkey_failover: {args.valkey_failover_kiosks} waiting, one in a call; killing the Valkey master "
             f"({args.valkey_replicas} replica(s), min-replicas-to-write {min_to_write}, down-after-milliseconds "
             f"{args.valkey_down_after_ms})")
        killed = await kill_the_master(tmp, pg, valkey, args.valkey_failover_kiosks)
    finally:
        valkey.stop()
        pg.stop()
    note(f"{killed.places_kept} of {killed.waiting} in their place, order kept: {killed.order_kept}, call resumed: "
         f"{killed.call_resumed}, a central leads after {killed.leads_after_s:.2f} s, the console sees the queue "
         f"after {killed.recovery_s:.2f} s, last kiosk back after {killed.kiosks_back_s:.2f} s, {killed.relayed_after} "
         f"sockets relayed by the other central afterwards; the new master: {killed.new_master_replicas} replica(s), "
         f"took a write: {killed.new_master_writes}; centrals that "
         f"exited: {killed.exits}; the old master a replica again {killed.replica_again_s:.1f} s after its restart, "
         f"READONLY errors there {killed.readonly_errors}, central's connections there "
         f"{killed.central_connections_to_old}")
    emit("valkey_failover_places_kept", killed.places_kept, "visits")
    emit("valkey_failover_leads_s", killed.leads_after_s, "s")
    emit("valkey_failover_recovery_s", killed.recovery_s, "s")
    emit("valkey_failover_kiosks_back_s", killed.kiosks_back_s, "s")
    emit("valkey_old_master_replica_s", killed.replica_again_s, "s")
    emit("valkey_failover_relayed_after", killed.relayed_after, "sockets")
    ok = (killed.places_kept == killed.waiting and killed.order_kept and killed.call_resumed and not killed.ended
          and killed.new_master_writes and killed.readonly_errors == 0 and killed.central_connections_to_old == 0)
    return 0 if ok else 1


def run(args) -> int:
    if args.valkey_failover_kiosks < 1 or args.valkey_down_after_ms < 100 or args.valkey_replicas < 1:
        raise SystemExit("--valkey-failover-kiosks and --valkey-replicas must be at least 1, --valkey-down-after-ms "
                         "at least 100")
    return run_in_tmp(NAME, lambda tmp: _run(args, tmp), "amtsklingel-valkey-failover-")
