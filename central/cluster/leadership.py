"""One central leads, the others stand by: who serves, the takeover, and stepping down.

A standby first makes sure Redis/Valkey saves nothing to disk (visits must not land there), then
tries for the lease (central/cluster/lease.py) every POLL_S. Once it holds it, it
loads the waiting rooms from Redis, adopts them (central/live/takeover.py), starts writing
them through, and only then answers ``GET /health/leader`` with 200, so HAProxy sends it the
kiosks and consoles. It renews the lease every RENEW_EVERY_S. When a renewal fails for longer
than the lease allows, or a write of the rooms is refused because another central holds the
lease, it stops leading at once: ``on_lost`` closes every WebSocket and ends the process, which
systemd starts again as a standby with empty memory (no state of the old term can leak into a new
one). Redis away for longer than the lease thus leaves no leader: the deployment's single point,
recorded in docs/decisions/0008-several-centrals.md.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from central.cluster.lease import RENEW_EVERY_S, Lease
from central.rooms.redis_rooms import RedisRooms

log = logging.getLogger(__name__)

POLL_S = 0.5  # a standby asks for the lease this often: part of the failover time (0008)
QUIET_S = 30.0  # a standby that cannot reach Redis says so at most this often


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


class Leadership:
    def __init__(self, lease: Lease, rooms: RedisRooms, take_over: Callable[[], int],
                 on_lost: Callable[[str], None]) -> None:
        self.lease, self.rooms = lease, rooms
        self._take_over, self._on_lost = take_over, on_lost
        self._leading = False
        self._writer: asyncio.Task | None = None
        self.epoch: int | None = None

    @property
    def leading(self) -> bool:
        """True only while the lease runs: the moment it would lapse, this central is a standby."""
        return self._leading and self.lease.held

    async def run(self) -> None:
        await self._wait_until_nothing_is_saved()
        await self._wait_for_lease()
        loaded = await asyncio.wait_for(self.rooms.load(), self.lease.seconds_left())
        self._take_over()
        self.epoch = self.lease.epoch
        self._leading = True
        log.info("leading (epoch %s) with %d visits taken over", self.epoch, loaded)
        self._writer = asyncio.get_running_loop().create_task(self.rooms.run())
        await self._keep()

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
                    log.warning("standby: cannot ask Redis for the lease (%s); trying again", exc)
                    last_complaint = loop.time()
            await asyncio.sleep(POLL_S)

    async def _keep(self) -> None:
        """Renew until the lease is lost; never sleep past the moment it would run out."""
        while True:
            await asyncio.sleep(max(0.0, min(RENEW_EVERY_S, self.lease.seconds_left())))
            if not self.lease.held:
                return self.lose("the lease ran out before it could be renewed")
            try:
                renewed = await asyncio.wait_for(self.lease.renew(), max(0.01, self.lease.seconds_left()))
            except Exception as exc:  # timeout or Redis error: try again while the lease still runs
                log.warning("the lease could not be renewed (%s); %.1f s left", exc, self.lease.seconds_left())
                continue
            if not renewed:
                return self.lose("another central holds the lease")

    def lose(self, why: str) -> None:
        """Stop leading now (the lease is gone, or the rooms' writes were refused)."""
        if not self._leading:
            return
        self._leading = False
        self.lease.drop()
        if self._writer is not None:
            self._writer.cancel()
        log.error("stopped leading: %s", why)
        self._on_lost(why)

    async def stop(self) -> None:
        """A clean stop: the last changes written, the lease handed back so a standby takes over at once."""
        if self._writer is not None:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._writer
        if not self.leading:
            return
        self._leading = False
        try:
            await asyncio.wait_for(self.rooms.flush(), self.lease.seconds_left())
        except Exception as exc:
            log.warning("the last changes of the waiting rooms were not written (%s)", exc)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.lease.release(), 1.0)
        log.info("handed the lease back")
