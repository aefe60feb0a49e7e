"""Anonymous counters: visits and call failures per department and day, and kiosk tokens used twice.

Nothing here identifies a visit: a day's row holds counts and sums, and its
durations are counts per bucket (:mod:`central.storage.histogram`). Every write is
one atomic "add to the counter" statement, so several central processes can count
into the same row at once.
"""
from __future__ import annotations

import datetime as dt
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from central.storage import histogram
from central.storage import schema as t

RECENT_DAYS = 60  # how far back the wait estimate looks for call durations at start-up


@dataclass(frozen=True)
class DailyStats:
    day: dt.date
    department: str
    visits: int
    calls: int
    median_wait_s: float | None
    median_duration_s: float | None
    call_failures: int = 0


@dataclass(frozen=True)
class TokenReuse:
    """A kiosk token seen on two connections at once: how often, and when last (unix seconds)."""

    times: int
    last_at: float


def _upsert(dialect: str, table: sa.Table, keys: tuple[str, ...], values: dict, add: Iterable[str]):
    insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table).values(**values)
    return insert.on_conflict_do_update(
        index_elements=list(keys), set_={name: table.c[name] + insert.excluded[name] for name in add})


class Counters:
    engine: AsyncEngine

    # -- visits ----------------------------------------------------------------
    async def record_visit(self, department: str, day: dt.date, wait_s: float | None,
                           duration_s: float | None) -> None:
        """Count one ended visit: waited ``wait_s`` (None: left before pick-up), talked ``duration_s`` (None: no call)."""
        async with self.engine.begin() as c:
            await _add_visits(c, department, day, visits=1, calls=int(duration_s is not None),
                              wait_sum_s=round(wait_s or 0), duration_sum_s=round(duration_s or 0))
            for measure, seconds in (("wait", wait_s), ("duration", duration_s)):
                if seconds is not None:
                    await _add_bucket(c, department, day, measure, histogram.bucket_of(seconds), 1)

    async def record_call_failure(self, department: str, day: dt.date) -> None:
        """Count a call whose media never connected (ICE/TURN trouble: for the city's IT)."""
        async with self.engine.begin() as c:
            await _add_visits(c, department, day, call_failures=1)

    async def recent_durations(self, department: str, limit: int = 20) -> list[float]:
        """Up to ``limit`` call durations spread like this department's most recent days' calls.

        Stands in for the last calls (which are not kept): the wait estimate seeds from it.
        """
        since = dt.date.today() - dt.timedelta(days=RECENT_DAYS)
        h = t.daily_histogram
        async with self.engine.connect() as c:
            rows = (await c.execute(sa.select(h.c.day, h.c.bucket_s, h.c.count).where(
                h.c.department == department, h.c.measure == "duration", h.c.day >= since).order_by(
                h.c.day.desc()))).all()
        counts: Counter[int] = Counter()
        newest_days: dict[dt.date, None] = {}
        for day, bucket, count in rows:
            if day not in newest_days and sum(counts.values()) >= limit:
                break  # enough calls from the newest days
            newest_days[day] = None
            counts[bucket] += count
        return histogram.spread(counts, limit)

    async def daily_stats(self, since: dt.date) -> list[DailyStats]:
        v, h = t.daily_visits, t.daily_histogram
        async with self.engine.connect() as c:
            days = (await c.execute(sa.select(v).where(v.c.day >= since))).all()
            buckets = (await c.execute(sa.select(h).where(h.c.day >= since))).all()
        by_day: dict[tuple[dt.date, str, str], dict[int, int]] = {}
        for b in buckets:
            by_day.setdefault((b.day, b.department, b.measure), {})[b.bucket_s] = b.count
        return [DailyStats(r.day, r.department, r.visits, r.calls,
                           histogram.median(by_day.get((r.day, r.department, "wait"), {})),
                           histogram.median(by_day.get((r.day, r.department, "duration"), {})), r.call_failures)
                for r in sorted(days, key=lambda r: (r.day, r.department), reverse=True)]

    # -- kiosk tokens used twice -------------------------------------------------
    async def record_token_reuse(self, kiosk_id: int, at: float | None = None) -> None:
        """Two connections with this kiosk's token were open at once (a cloned SD card)."""
        at = time.time() if at is None else at
        async with self.engine.begin() as c:
            insert = (postgresql.insert if c.dialect.name == "postgresql" else sqlite.insert)(
                t.kiosk_token_reuse).values(kiosk_id=kiosk_id, times=1, last_at=at)
            await c.execute(insert.on_conflict_do_update(
                index_elements=["kiosk_id"],
                set_={"times": t.kiosk_token_reuse.c.times + 1, "last_at": insert.excluded.last_at}))

    async def forget_token_reuse(self, kiosk_id: int) -> None:
        """The kiosk got a new token: what was seen of the old one no longer applies."""
        async with self.engine.begin() as c:
            await c.execute(sa.delete(t.kiosk_token_reuse).where(t.kiosk_token_reuse.c.kiosk_id == kiosk_id))

    async def token_reuse(self) -> dict[int, TokenReuse]:
        """Kiosk id -> how often and when last its token was used by two connections at once."""
        async with self.engine.connect() as c:
            rows = (await c.execute(sa.select(t.kiosk_token_reuse))).all()
        return {r.kiosk_id: TokenReuse(r.times, r.last_at) for r in rows}


async def _add_visits(c: AsyncConnection, department: str, day: dt.date, **counts: int) -> None:
    values = {"visits": 0, "calls": 0, "call_failures": 0, "wait_sum_s": 0, "duration_sum_s": 0, **counts}
    await c.execute(_upsert(c.dialect.name, t.daily_visits, ("department", "day"),
                            {"department": department, "day": day, **values}, add=counts))


async def _add_bucket(c: AsyncConnection, department: str, day: dt.date, measure: str, bucket_s: int,
                      count: int) -> None:
    await c.execute(_upsert(c.dialect.name, t.daily_histogram, ("department", "day", "measure", "bucket_s"),
                            {"department": department, "day": day, "measure": measure, "bucket_s": bucket_s,
                             "count": count}, add=("count",)))


# -- moving from the per-visit table of earlier versions --------------------------------------------------

_legacy = sa.Table(
    "visit_stats", sa.MetaData(),
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("department", sa.String(40)),
    sa.Column("day", sa.Date),
    sa.Column("wait_s", sa.Integer),
    sa.Column("duration_s", sa.Integer),
)


async def fold_legacy_visit_rows(c: AsyncConnection) -> int:
    """Earlier versions kept one row per visit in ``visit_stats``: add them to the daily counters, drop the table.

    Runs inside :meth:`Database.open`'s schema transaction (serialised across processes), so it
    happens once; a database without that table is left alone. Returns how many rows were folded.
    """
    if not await c.run_sync(lambda sync: sa.inspect(sync).has_table("visit_stats")):
        return 0
    rows = (await c.execute(sa.select(_legacy.c.department, _legacy.c.day, _legacy.c.wait_s,
                                      _legacy.c.duration_s))).all()
    days: dict[tuple[str, dt.date], Counter[str]] = {}
    buckets: Counter[tuple[str, dt.date, str, int]] = Counter()
    for department, day, wait_s, duration_s in rows:
        day_counts = days.setdefault((department, day), Counter())
        day_counts.update(visits=1, calls=int(duration_s is not None), wait_sum_s=wait_s or 0,
                          duration_sum_s=duration_s or 0)
        for measure, seconds in (("wait", wait_s), ("duration", duration_s)):
            if seconds is not None:
                buckets[(department, day, measure, histogram.bucket_of(seconds))] += 1
    for (department, day), counts in days.items():
        await _add_visits(c, department, day, **{k: int(counts[k]) for k in
                                                 ("visits", "calls", "wait_sum_s", "duration_sum_s")})
    for (department, day, measure, bucket_s), count in buckets.items():
        await _add_bucket(c, department, day, measure, bucket_s, count)
    await c.execute(sa.text("DROP TABLE visit_stats"))
    return len(rows)
