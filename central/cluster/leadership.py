"""One central leads, the others stand by: who serves, the takeover, and stepping down.

A standby first makes sure Redis/Valkey saves nothing to disk (visits must not land there), then
tries for the lease (central/cluster/lease.py) every POLL_S. Once it holds it, a thread renews it
(central/cluster/keeper.py) while the event loop beats its heartbeat; the central loads the waiting
rooms from Redis, adopts them (central/live/takeover.py), starts writing them through, and only then
answers ``GET /health/leader`` with 200, so HAProxy sends it the kiosks and consoles. When the term
ends (the loop stalled past the limit, Redis unreachable or refusing writes for want of replicas for longer
than the lease allows, or a write of the rooms refused because another central holds the lease), it stops
leading at once: ``on_lost`` closes every WebSocket and ends the process, which systemd starts again as a
standby with empty memory (no state of the old term can leak into a new one). Redis away for longer than the
lease thus leaves no leader: with one Valkey the deployment's single point; under Sentinel, until the sentinels
have promoted a replica and the clients found it (central/cluster/valkey_clients.py, docs/decisions/0008-several-centrals.md).
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from typing import Protocol

from central.cluster.keeper import (
    HEARTBEAT_S,
    REDIS_TIMEOUT_S,
    RETRY_S,
    STALL_LIMIT_S,
    LeaseKeeper,
    LoopHeartbeat,
    redis_trouble,
)
from central.cluster.lease import Lease
from central.rooms.redis_rooms import RedisRooms

log = logging.getLogger(__name__)

POLL_S = 0.5  # a standby asks for the lease this often: part of the failover time (0008)
QUIET_S = 30.0  # a standby that cannot reach Redis says so at most this often
LOAD_TIMEOUT_S = 10.0  # a takeover that cannot read the rooms from Redis by then gives up (and restarts)
# The keeper thread reports why a term ended; only if it has not within this after the lease ran out
# (it hangs on Redis, say) does the loop end the term on its own.
OVERDUE_S = REDIS_TIMEOUT_S + RETRY_S + 0.5


async def persistence(client) -> str | None:
    """What makes the Redis/Valkey server write to disk ("save 3600 1", "appendonly yes"), or None: none,
    or the server does not let this user read its configuration (an ACL without CONFIG), so it cannot tell."""
    from redis.exceptions import ResponseError

    try:
        save = (await client.config_get("save")).get("save", "")
        appendonly = (await client.config_get("appendonly")).get("appendonly", "no")
    except ResponseError as exc:  # NOPERM: connection errors go up to the caller, which asks again
        log.info("cannot read Redis/Valkey's persistence settings (%s); make sure it saves nothing", exc)
        return None
    saving = [f"save {save}"] if save.strip() else []
    saving += ["appendonly yes"] if appendonly == "yes" else []
    return ", ".join(saving) or None


STOP_TRIES, STOP_WAIT_S = 5, 0.2


async def stop_task(task: asyncio.Task) -> None:
    """Cancel ``task`` and wait until it has ended, cancelling again if it goes on: Python 3.11's
    asyncio.wait_for (which redis-py uses to send) returns normally when the cancel comes just as what it
    waited for finished, so one cancel can be lost, and a writer then waited for its next renewal, up to a
    quarter of the resume grace, while the lease of a central being stopped ran out."""
    for _ in range(STOP_TRIES):
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=STOP_WAIT_S)
        if done:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                task.result()
            return
    log.warning("a task did not stop when cancelled %d times: %r", STOP_TRIES, task)


class WrittenThrough(Protocol):
    """State the leader keeps in memory and writes through to Redis (central/rooms/fenced_hash.py)."""

    async def load(self) -> int: ...

    async def flush(self) -> None: ...

    async def run(self) -> None: ...


class Leadership:
    """``rooms`` and ``also`` (the guest links) are loaded at a takeover and written through while leading.
    ``redis_url`` is what the keeper thread connects to; ``stall_limit_s`` how long the event loop may
    stall before the lease goes (central/cluster/keeper.py)."""

    def __init__(self, lease: Lease, rooms: RedisRooms, take_over: Callable[[], int],
                 on_lost: Callable[[str], None], *, redis_url: str, stall_limit_s: float = STALL_LIMIT_S,
                 also: Sequence[WrittenThrough] = ()) -> None:
        self.lease, self.rooms = lease, rooms
        self._written: list[WrittenThrough] = [rooms, *also]
        self._take_over, self._on_lost = take_over, on_lost
        self._redis_url, self.stall_limit_s = redis_url, stall_limit_s
        self.heartbeat = LoopHeartbeat(stall_limit_s)
        self._leading = False
        self._ended = False  # the term is over (lost or handed back): nothing may bring it back
        self._keeper: LeaseKeeper | None = None
        self._writers: list[asyncio.Task] = []
        self._beating: asyncio.Task | None = None
        self.epoch: int | None = None

    @property
    def leading(self) -> bool:
        """True only while this central's own term runs: the moment the lease would lapse, or the keeper
        thread gave it up, this central is a standby. Whatever acts as leader asks this first."""
        return self._leading and self.lease.held and self.lease.epoch == self.epoch

    async def run(self) -> None:
        self._beating = asyncio.get_running_loop().create_task(self._beat())
        await self._wait_until_nothing_is_saved()
        await self._wait_for_lease()
        self.epoch = self.lease.epoch
        self._keeper = LeaseKeeper(self.lease, self._redis_url, self.heartbeat, self._ended_elsewhere(),
                                   stall_limit_s=self.stall_limit_s)
        self._keeper.start()
        loaded = [await asyncio.wait_for(state.load(), LOAD_TIMEOUT_S) for state in self._written]
        if self._ended or not self.lease.held:
            return self.lose("the lease ran out while the waiting rooms were loaded")
        self._take_over()
        self._leading = True
        log.info("leading (epoch %s) with %d visits taken over (%s in all from Redis)", self.epoch, loaded[0],
                 " + ".join(map(str, loaded)))
        self._writers = [asyncio.get_running_loop().create_task(state.run()) for state in self._written]

    def _ended_elsewhere(self) -> Callable[[str], None]:
        """What the keeper thread calls when the term ended: :meth:`lose`, run on the event loop."""
        loop = asyncio.get_running_loop()

        def ended(why: str) -> None:
            with contextlib.suppress(RuntimeError):  # the loop is closed: the process is ending anyway
                loop.call_soon_threadsafe(self.lose, why)
        return ended

    async def _beat(self) -> None:
        """Prove to the keeper that the loop runs; and step down should the lease run out unreported."""
        while True:
            self.heartbeat.beat()
            if self._leading and self.lease.value is not None and self.lease.seconds_left() < -OVERDUE_S:
                self.lose("the lease ran out before it could be renewed")
            await asyncio.sleep(HEARTBEAT_S)

    async def _wait_until_nothing_is_saved(self) -> None:
        """Visits must not land on disk (decision 0003): a server that saves snapshots or an append-only
        file gets no visits from this central, which stands by and says why until it is set right."""
        told = None
        while True:
            try:
                saving = await asyncio.wait_for(persistence(self.rooms.client), POLL_S * 4)
            except Exception as exc:  # Redis away or slow: ask again
                saving, why = "unknown", f"standby: cannot reach Redis ({exc}); trying again"
            else:
                if saving is None:
                    return
                why = (f"Redis/Valkey saves its data to disk ({saving}): visits would land there. Set save \"\" "
                       "and appendonly no in its configuration (docs/deploy.md); this central stands by until then")
            if saving != told:
                log.error(why)
                told = saving
            await asyncio.sleep(POLL_S * 4)

    async def _wait_for_lease(self) -> None:
        last_complaint = None
        loop = asyncio.get_running_loop()
        while True:
            try:
                if await asyncio.wait_for(self.lease.acquire(), POLL_S * 4):
                    return
            except Exception as exc:  # Redis away or slow: stay standby, keep asking
                if last_complaint is None or loop.time() - last_complaint > QUIET_S:
                    log.warning("standby: cannot ask Redis for the lease (%s); trying again", redis_trouble(exc))
                    last_complaint = loop.time()
            await asyncio.sleep(POLL_S)

    def lose(self, why: str) -> None:
        """Stop leading now (the keeper ended the term, or the rooms' writes were refused)."""
        if self._ended:
            return
        self._ended, self._leading = True, False
        self.lease.drop()
        if self._keeper is not None:
            self._keeper.stop()
        for writer in self._writers:
            writer.cancel()
        log.error("stopped leading: %s", why)
        self._on_lost(why)

    async def stop(self) -> None:
        """A clean stop: the last changes written, the lease handed back so a standby takes over at once."""
        if self._keeper is not None:
            self._keeper.stop()  # renews no more, and reports nothing when the lease goes below
        if self._beating is not None:
            self._beating.cancel()
        for writer in self._writers:
            await stop_task(writer)
        if not self.leading:
            return
        self._ended, self._leading = True, False
        try:
            await asyncio.wait_for(asyncio.gather(*(state.flush() for state in self._written)),
                                   self.lease.seconds_left())
        except Exception as exc:
            log.warning("the last changes of the waiting rooms or guest links were not written (%s)", exc)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.lease.release(), 1.0)
        log.info("handed the lease back")
