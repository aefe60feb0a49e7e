"""Booked appointments and their slot settings, in SQLite or PostgreSQL.

A booking row holds a department, a slot, a seat and the hash of its code: nothing about the
citizen. No double booking: each slot of a department has seats 0 .. parallel-1 and the pair
(slot, seat) is unique in the database, so of two requests for the last seat one insert fails,
whichever central process serves it. Rows are deleted at the end of their day; what remains is
counted per department and day in ``daily_bookings`` (booked, cancelled, kept, missed).
"""
from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from central.bookings.codes import code_hash, new_code
from central.bookings.slots import BookingError, Slot, SlotSettings
from central.storage import schema as t

log = logging.getLogger(__name__)

OUTCOMES = ("booked", "cancelled", "kept", "missed")


@dataclass(frozen=True)
class Booking:
    department: str
    slot_start: int  # unix seconds
    slot_end: int
    day: dt.date     # in the department's time zone
    checked_in: bool


@dataclass(frozen=True)
class BookedSlot:
    """One slot of a day with bookings, for the console: how many booked, how many came."""

    department: str
    slot_start: int
    slot_end: int
    booked: int
    checked_in: int


@dataclass(frozen=True)
class BookingDay:
    day: dt.date
    department: str
    booked: int
    cancelled: int
    kept: int
    missed: int


class BookingStore:
    def __init__(self, engine: AsyncEngine):
        self.engine = engine

    # -- settings ------------------------------------------------------------------
    async def settings(self) -> dict[str, SlotSettings]:
        """Department slug -> its slot settings, for departments that take bookings."""
        async with self.engine.connect() as c:
            rows = (await c.execute(sa.select(t.booking_settings))).all()
        return {r.department: SlotSettings(r.slot_minutes, r.parallel, r.days_ahead) for r in rows}

    async def save_settings(self, department: str, settings: SlotSettings | None) -> None:
        """Set the department's slot settings; None: it takes no new bookings (existing ones stay)."""
        s = t.booking_settings
        async with self.engine.begin() as c:
            await c.execute(sa.delete(s).where(s.c.department == department))
            if settings is not None:
                await c.execute(sa.insert(s).values(department=department, slot_minutes=settings.slot_minutes,
                                                    parallel=settings.parallel, days_ahead=settings.days_ahead))

    # -- booking -------------------------------------------------------------------
    async def create(self, department: str, slot: Slot, parallel: int, forget_at: int) -> str:
        """Book a seat of ``slot``; returns the new booking's code (shown once, stored hashed).

        Raises BookingError("full") when every seat is taken, also when a concurrent request took the last.
        """
        b = t.bookings
        for _ in range(parallel + 3):  # a lost race for a seat tries the next; a (rare) code clash, a new code
            async with self.engine.connect() as c:
                taken = set((await c.execute(sa.select(b.c.seat).where(
                    b.c.department == department, b.c.slot_start == slot.start_ts))).scalars())
            free = [seat for seat in range(parallel) if seat not in taken]
            if not free:
                break
            code = new_code()
            try:
                async with self.engine.begin() as c:
                    await c.execute(sa.insert(b).values(
                        code_hash=code_hash(code), department=department, slot_start=slot.start_ts,
                        slot_end=slot.end_ts, seat=free[0], day=slot.start.date(), forget_at=forget_at))
                    await _count(c, department, slot.start.date(), booked=1)
                return code
            except sa.exc.IntegrityError:
                continue
        raise BookingError("full", f"the appointment at {slot.start:%H:%M} on {slot.start.date().isoformat()} has "
                                   f"just been booked by someone else; choose another time")

    async def find(self, code: str) -> Booking | None:
        b = t.bookings
        async with self.engine.connect() as c:
            row = (await c.execute(sa.select(b).where(b.c.code_hash == code_hash(code)))).first()
        return None if row is None else Booking(row.department, row.slot_start, row.slot_end, row.day,
                                                row.checked_in_at is not None)

    async def cancel(self, code: str) -> bool:
        """Cancel a booking the citizen has not used yet; False if there is none (any more)."""
        b = t.bookings
        async with self.engine.begin() as c:
            row = (await c.execute(sa.delete(b).where(b.c.code_hash == code_hash(code), b.c.checked_in_at.is_(None))
                                   .returning(b.c.department, b.c.day))).first()
            if row is not None:
                await _count(c, row.department, row.day, cancelled=1)
        return row is not None

    async def check_in(self, code: str, at: float) -> bool:
        """Mark the booking used (the citizen came); False if it is gone or was used already.

        One conditional UPDATE: of two check-ins with the same code at once, exactly one succeeds.
        """
        b = t.bookings
        async with self.engine.begin() as c:
            row = (await c.execute(sa.update(b).where(b.c.code_hash == code_hash(code), b.c.checked_in_at.is_(None))
                                   .values(checked_in_at=at).returning(b.c.department, b.c.day))).first()
            if row is not None:
                await _count(c, row.department, row.day, kept=1)
        return row is not None

    async def release(self, code: str) -> None:
        """Undo a check-in whose visit never got a place (its kiosk or browser went away at that moment)."""
        b = t.bookings
        async with self.engine.begin() as c:
            row = (await c.execute(sa.update(b).where(b.c.code_hash == code_hash(code), b.c.checked_in_at.is_not(None))
                                   .values(checked_in_at=None).returning(b.c.department, b.c.day))).first()
            if row is not None:
                await _count(c, row.department, row.day, kept=-1)

    # -- reading ---------------------------------------------------------------------
    async def seats_taken(self, department: str, day: dt.date) -> dict[int, int]:
        """Slot start (unix seconds) -> how many seats are booked, for one department and day."""
        b = t.bookings
        async with self.engine.connect() as c:
            rows = (await c.execute(sa.select(b.c.slot_start, sa.func.count()).where(
                b.c.department == department, b.c.day == day).group_by(b.c.slot_start))).all()
        return {start: n for start, n in rows}

    async def day_slots(self, departments: Iterable[str], since: int, until: int) -> list[BookedSlot]:
        """Booked slots starting in [since, until) of these departments, in order of time."""
        b = t.bookings
        came = sa.func.count(b.c.checked_in_at)
        async with self.engine.connect() as c:
            rows = (await c.execute(sa.select(b.c.department, b.c.slot_start, b.c.slot_end, sa.func.count(), came)
                                    .where(b.c.department.in_(list(departments)), b.c.slot_start >= since,
                                           b.c.slot_start < until)
                                    .group_by(b.c.department, b.c.slot_start, b.c.slot_end)
                                    .order_by(b.c.slot_start, b.c.department))).all()
        return [BookedSlot(*row) for row in rows]

    # -- forgetting -------------------------------------------------------------------
    async def forget_past(self, now: float) -> int:
        """Delete every booking whose day is over; one not used counts as missed. Returns how many went."""
        b = t.bookings
        async with self.engine.begin() as c:
            rows = (await c.execute(sa.delete(b).where(b.c.forget_at <= now)
                                    .returning(b.c.department, b.c.day, b.c.checked_in_at))).all()
            missed: dict[tuple[str, dt.date], int] = {}
            for department, day, checked_in_at in rows:
                if checked_in_at is None:
                    missed[(department, day)] = missed.get((department, day), 0) + 1
            for (department, day), n in missed.items():
                await _count(c, department, day, missed=n)
        if rows:
            log.info("forgot %d bookings of past days", len(rows))
        return len(rows)

    async def daily(self, since: dt.date) -> list[BookingDay]:
        d = t.daily_bookings
        async with self.engine.connect() as c:
            rows = (await c.execute(sa.select(d).where(d.c.day >= since).order_by(d.c.day.desc(),
                                                                                     d.c.department))).all()
        return [BookingDay(r.day, r.department, r.booked, r.cancelled, r.kept, r.missed) for r in rows]

    async def totals(self) -> dict[tuple[str, str], int]:
        """(department, outcome) -> count over all days, for /metrics (outcomes: OUTCOMES)."""
        d = t.daily_bookings
        sums = [sa.func.sum(d.c[o]) for o in OUTCOMES]
        async with self.engine.connect() as c:
            rows = (await c.execute(sa.select(d.c.department, *sums).group_by(d.c.department))).all()
        return {(r[0], o): int(r[i + 1] or 0) for r in rows for i, o in enumerate(OUTCOMES)}


async def _count(c: AsyncConnection, department: str, day: dt.date, **add: int) -> None:
    """Add to the day's counters in one atomic statement (several centrals may count at once)."""
    d = t.daily_bookings
    values = {"department": department, "day": day, **{o: 0 for o in OUTCOMES}, **add}
    insert = (postgresql.insert if c.dialect.name == "postgresql" else sqlite.insert)(d).values(**values)
    await c.execute(insert.on_conflict_do_update(index_elements=["department", "day"],
                                                 set_={name: d.c[name] + insert.excluded[name] for name in add}))
