"""Login attempt counters, shared by every central process through the database.

Each counter is one row, changed with a single atomic upsert, so two processes (or
two requests in one) counting at once both count, and an attempt refused for a
wait is never counted. What the keys mean and how long a wait is lives in
central.web.throttle; this module only counts.
"""
from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from central.storage import schema as t
from protocol.errors import AmtsklingelError

_a = t.login_attempts


@dataclass(frozen=True)
class Counter:
    key: str
    account: str | None                 # set on counters an admin's unlock clears
    wait_after: Callable[[int], float]  # seconds until the next attempt, after this many


class _StillWaiting(AmtsklingelError):  # noqa: N818 - control flow inside this module only
    pass


class LoginAttempts:
    def __init__(self, engine: AsyncEngine):
        self.engine = engine
        self._insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert

    async def secret(self, day: str) -> str:
        """The HMAC secret of ``day`` (made by whichever process asks first); older days' are deleted."""
        q = sa.select(t.login_keys.c.secret).where(t.login_keys.c.day == day)
        async with self.engine.connect() as c:
            found = (await c.execute(q)).scalar_one_or_none()
        if found is not None:
            return found
        async with self.engine.begin() as c:
            await c.execute(self._insert(t.login_keys).values(day=day, secret=secrets.token_hex(32))
                            .on_conflict_do_nothing(index_elements=[t.login_keys.c.day]))
            # Only older days: a process whose clock is a little behind must not delete today's.
            await c.execute(sa.delete(t.login_keys).where(t.login_keys.c.day < day))
            return (await c.execute(q)).scalar_one()

    async def begin(self, counters: Iterable[Counter], now: float, forget_s: float) -> float:
        """Count one attempt on every counter and return 0, or, if any still asks to wait,
        count nothing and return the seconds left to wait."""
        counters = sorted(counters, key=lambda k: k.key)  # one lock order for every process
        async with self.engine.connect() as c:
            try:
                async with c.begin():
                    await c.execute(sa.delete(_a).where(_a.c.last_attempt < now - forget_s,
                                                        _a.c.blocked_until < now))
                    for counter in counters:
                        await self._count(c, counter, now, forget_s)
            except _StillWaiting:  # the transaction rolled back: nothing was counted
                return await self._wait_left(c, [k.key for k in counters], now)
        return 0.0

    async def _count(self, c, counter: Counter, now: float, forget_s: float) -> None:  # noqa: ANN001
        stmt = self._insert(_a).values(key=counter.key, account=counter.account, attempts=1, last_attempt=now,
                                       blocked_until=now)
        stmt = stmt.on_conflict_do_update(
            index_elements=[_a.c.key],
            set_={"attempts": sa.case((_a.c.last_attempt < now - forget_s, 1), else_=_a.c.attempts + 1),
                  "last_attempt": now},
            where=_a.c.blocked_until <= now).returning(_a.c.attempts)
        attempts = (await c.execute(stmt)).scalar_one_or_none()
        if attempts is None:
            raise _StillWaiting
        if (wait := counter.wait_after(attempts)) > 0:
            await c.execute(sa.update(_a).where(_a.c.key == counter.key).values(blocked_until=now + wait))

    @staticmethod
    async def _wait_left(c, keys: list[str], now: float) -> float:  # noqa: ANN001
        until = (await c.execute(sa.select(sa.func.max(_a.c.blocked_until)).where(_a.c.key.in_(keys)))).scalar()
        return max((until or now) - now, 0.001)

    async def uncount(self, keys: Iterable[str], forget: Iterable[str], now: float) -> None:
        """Take back an attempt that was not a failure: one less on ``keys`` (and no wait it set);
        ``forget`` deleted."""
        keys, forget = list(keys), list(forget)
        async with self.engine.begin() as c:
            if keys:
                await c.execute(sa.update(_a).where(_a.c.key.in_(keys)).values(
                    attempts=sa.case((_a.c.attempts > 0, _a.c.attempts - 1), else_=0), blocked_until=now))
            if forget:
                await c.execute(sa.delete(_a).where(_a.c.key.in_(forget)))

    async def unlock(self, account: str) -> int:
        """Delete every counter of this account; returns how many there were."""
        async with self.engine.begin() as c:
            return (await c.execute(sa.delete(_a).where(_a.c.account == account))).rowcount

    async def waiting_accounts(self, now: float) -> dict[str, float]:
        """Account hash -> until when it (or it from some address) waits."""
        q = (sa.select(_a.c.account, sa.func.max(_a.c.blocked_until)).where(
            _a.c.account.is_not(None), _a.c.blocked_until > now).group_by(_a.c.account))
        async with self.engine.connect() as c:
            return {account: until for account, until in (await c.execute(q)).all()}
