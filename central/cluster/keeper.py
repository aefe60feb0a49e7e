"""The leader keeps its lease from a thread of its own, for as long as its event loop shows it is alive.

A lease renewed by a task on the event loop is only as punctual as the loop: a leader busy with a wave
of reconnects can run a single callback for seconds, its renewal comes too late, and a central that was
merely busy ends its term and disconnects everyone. So :class:`LeaseKeeper` renews from a thread with its
own blocking Redis connection, which runs whatever the loop is doing (Python hands the GIL to other
threads every few milliseconds, and waiting on a socket releases it).

A thread alone would keep the lease of a loop that hangs for good, though, and with it every kiosk. So the
loop proves it is alive: :class:`LoopHeartbeat` is beaten every HEARTBEAT_S by a task on the loop, and the
keeper renews only while the last beat is younger than the stall limit (``lease_stall_limit_s``). A loop
stalled past the limit ends the term: the keeper stops renewing and hands the lease back at once, so a
standby takes over within about the limit plus its poll, and the loop, once it runs again, finds it no
longer leads (:attr:`central.cluster.leadership.Leadership.leading`) and steps down. Every way a term ends
is logged with its reason: the loop stalled, Redis could not be reached in time, Valkey refused the writes
(its master has no replica in reach), the process itself could not run, or another central holds the lease.
:func:`redis_trouble` words what went wrong with Redis, for the keeper, the standby and the rooms' writes alike.
"""
from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable

from central.cluster.lease import RELEASE, RENEW, RENEW_EVERY_S, Lease

log = logging.getLogger(__name__)

HEARTBEAT_S = 0.25  # the loop beats this often; a busy loop beats late, a stalled one not at all
# How long the loop may go without a beat before the lease goes. A loop that is only busy catches up within
# a second or two even on a loaded two-core machine; one that has not run for this long serves nobody (kiosks
# and consoles get no answer), and a standby should serve them instead. Well below the appliance's WebSocket
# heartbeat (20 s), so kiosks are not lost meanwhile. Raise it (and HAProxy's timeout check with it,
# docs/deploy.md) on a machine that is often overloaded.
STALL_LIMIT_S = 5.0
RETRY_S = 0.25  # after a renewal that failed: again soon, while the lease still runs
REDIS_TIMEOUT_S = 1.0  # one renewal may take this long; the next attempt still falls inside the lease
LOG_STALL_S = 1.0  # the loop logs a gap between beats longer than this, so the journal shows a busy leader

# A master with min-replicas-to-write that has heard from too few replicas for min-replicas-max-lag refuses every
# write with NOREPLICAS while it answers everything else: Valkey is reachable, and an admin told "unreachable" would
# look at the network to Valkey instead of at the replicas and the network between the Valkey machines.
NO_REPLICA = ("Valkey refuses writes: its master has no replica in reach (min-replicas-to-write; {detail}). "
              "Check the replicas and the network between the Valkey machines")
# redis-py's error for a pipeline repeats the whole command, arguments and all: for the rooms' writes that is the
# visits themselves, which have no place in the journal.
_PIPELINE = re.compile(r"^Command # \d+ \(.*?\) of pipeline caused error: ", re.S)


def refuses_writes(exc: BaseException) -> bool:
    """The master refused a write for want of replicas (NOREPLICAS), also from inside a script."""
    return "NOREPLICAS" in str(exc)


def redis_trouble(exc: BaseException) -> str:
    """What went wrong with a Redis/Valkey command, for the journal: a refusal for want of replicas in words an admin
    can act on, anything else as redis-py says it (without a pipeline's arguments)."""
    text = _PIPELINE.sub("", str(exc))
    if refuses_writes(exc):
        detail = text[text.index("NOREPLICAS"):].split(" script:")[0].strip().rstrip(".")
        return NO_REPLICA.format(detail=detail)
    return text


class LoopHeartbeat:
    """When the event loop last ran a beat (monotonic seconds), read by the keeper thread. A gap over a second
    is logged (information: the leader is busy); over half of ``stall_limit_s`` it is a warning, since the
    lease would be at stake not much later."""

    def __init__(self, stall_limit_s: float = STALL_LIMIT_S) -> None:
        self.stall_limit_s = stall_limit_s
        self.last = time.monotonic()

    def age(self) -> float:
        return time.monotonic() - self.last

    def beat(self) -> None:
        now = time.monotonic()
        gap, self.last = now - self.last, now
        if gap > max(LOG_STALL_S, self.stall_limit_s / 2):
            log.warning("the event loop was stalled %.1f s; at %g s (lease_stall_limit_s) this central would hand "
                        "its lease to a standby", gap, self.stall_limit_s)
        elif gap > LOG_STALL_S:
            log.info("the event loop was stalled %.1f s", gap)


class LeaseKeeper(threading.Thread):
    """Renews ``lease`` every RENEW_EVERY_S over its own connection to ``redis_url`` while ``heartbeat`` is
    younger than ``stall_limit_s``. When the term ends it calls ``on_ended(why)`` from this thread (once;
    never after :meth:`stop`)."""

    def __init__(self, lease: Lease, redis_url: str, heartbeat: LoopHeartbeat, on_ended: Callable[[str], None],
                 *, stall_limit_s: float = STALL_LIMIT_S, renew_every_s: float = RENEW_EVERY_S) -> None:
        super().__init__(name="lease-keeper", daemon=True)
        self.lease, self.heartbeat = lease, heartbeat
        self.stall_limit_s, self.renew_every_s = stall_limit_s, renew_every_s
        self._redis_url = redis_url
        self._on_ended = on_ended
        self._stopping = threading.Event()
        self.why: str | None = None  # why the term ended, once it has

    def stop(self) -> None:
        """A clean stop: renew no more and report nothing (the loop hands the lease back itself)."""
        self._stopping.set()

    def run(self) -> None:
        from central.cluster.valkey_clients import sync_client  # only where redis_url is configured

        client = sync_client(self._redis_url, REDIS_TIMEOUT_S)
        self._follow = _follower(self._redis_url)
        try:
            why = self._keep(client)
        except Exception as exc:  # a bug here must end the term, not leave a leader nobody renews for
            log.exception("the lease keeper failed")
            why = f"the lease keeper failed ({exc})"
        finally:
            client.close()
        if why is not None and not self._stopping.is_set():
            self.why = why
            log.error("this central's term ends: %s", why)
            self._on_ended(why)

    def _keep(self, client) -> str | None:
        renew = client.register_script(RENEW)
        ttl_ms = int(self.lease.ttl_s * 1000)
        error: Exception | None = None
        while not self._stopping.wait(RETRY_S if error else self.renew_every_s):
            value = self.lease.value
            if value is None:  # the loop dropped it (fenced write, clean stop under way)
                return None
            stalled = self.heartbeat.age()
            if stalled > self.stall_limit_s:
                self.lease.drop()  # the loop, when it runs again, no longer leads
                self._hand_back(client, value)
                return f"event loop stalled {stalled:.1f} s (lease_stall_limit_s is {self.stall_limit_s:g})"
            if not self.lease.held:
                self.lease.drop()
                if error is not None and refuses_writes(error):
                    return redis_trouble(error)
                if error is not None:
                    return f"Redis unreachable: the lease could not be renewed in time ({redis_trouble(error)})"
                return "the lease ran out before it could be renewed (this process could not run)"
            sent = time.monotonic()
            try:
                self._follow(client)  # under Sentinel: renew where the sentinels say the master is now
                answer = renew(keys=[self.lease.key], args=[value, ttl_ms])
            except Exception as exc:  # ConnectionError, TimeoutError, NOREPLICAS: try again while the lease runs
                error = exc
                log.warning("the lease could not be renewed (%s); %.1f s left", redis_trouble(exc),
                            self.lease.seconds_left())
                continue
            if answer != 1:
                self.lease.drop()
                return "another central holds the lease"
            self.lease.renewed(value, sent)
            error = None
        return None

    def _hand_back(self, client, value: str) -> None:
        """Delete the key if it is still ours, so a standby need not wait out the ttl."""
        try:
            client.register_script(RELEASE)(keys=[self.lease.key], args=[value])
        except Exception as exc:  # Redis away: the key runs out on its own within the ttl
            log.warning("could not hand the lease back (%s); it runs out within %g s", exc, self.lease.ttl_s)


def _follower(redis_url: str) -> Callable[[object], None]:
    from central.cluster.valkey_clients import follow_master_sync, is_sentinel

    return follow_master_sync if is_sentinel(redis_url) else (lambda client: None)
