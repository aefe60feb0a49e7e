"""Bookings in storage, once on SQLite and once on a real PostgreSQL server (as tests/central/test_storage.py).

The races are real: several Database objects (as several central processes) book the same slot and use
the same code at the same moment; the database's constraint decides, not a check in Python.
"""
from __future__ import annotations

import asyncio
import datetime as dt

import pytest

from central.bookings.codes import normalise
from central.bookings.slots import BookingError, SlotSettings, forget_after, slots_of_day
from central.hours import OfficeHours
from central.storage.bookings import BookedSlot, BookingDay
from central.storage.database import Database
from tests.central.test_storage import database_url

HOURS = OfficeHours.from_dict({"weekly": {"mon": [["08:00", "12:00"]], "tue": [["08:00", "09:00"]]},
                               "timezone": "Europe/Berlin"})
MONDAY = dt.date(2026, 12, 7)


async def open_several(url: str, n: int) -> list[Database]:
    first = await Database.open(url)
    return [first, *[await Database.open(url) for _ in range(n - 1)]]


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_bookings_are_stored_counted_and_forgotten(backend, tmp_path, request):
    async with database_url(backend, tmp_path, request) as url:
        db = await Database.open(url)
        try:
            assert await db.bookings.settings() == {}
            await db.bookings.save_settings("standesamt", SlotSettings(slot_minutes=30, parallel=2, days_ahead=14))
            await db.bookings.save_settings("buergerbuero", SlotSettings())
            await db.bookings.save_settings("buergerbuero", None)
            assert await db.bookings.settings() == {"standesamt": SlotSettings(30, 2, 14)}

            nine, half_past = slots_of_day(HOURS, SlotSettings(30), MONDAY)[2:4]
            codes = [await db.bookings.create("standesamt", nine, 2, forget_after(HOURS, nine)) for _ in range(2)]
            assert all(normalise(c) == c for c in codes) and codes[0] != codes[1]
            with pytest.raises(BookingError) as full:
                await db.bookings.create("standesamt", nine, 2, forget_after(HOURS, nine))
            assert full.value.reason == "full" and "09:00" in full.value.detail
            later = await db.bookings.create("standesamt", half_past, 2, forget_after(HOURS, half_past))

            found = await db.bookings.find(codes[0])
            assert (found.department, found.slot_start, found.day, found.checked_in) == (
                "standesamt", nine.start_ts, MONDAY, False)
            assert await db.bookings.find("ZZZZZZZZ") is None
            assert await db.bookings.seats_taken("standesamt", MONDAY) == {nine.start_ts: 2, half_past.start_ts: 1}

            # Used once; a used booking cannot be cancelled or used again; a cancelled one is gone.
            assert await db.bookings.check_in(codes[0], nine.start_ts + 60)
            assert not await db.bookings.check_in(codes[0], nine.start_ts + 61)
            assert not await db.bookings.cancel(codes[0])
            assert await db.bookings.cancel(later) and await db.bookings.find(later) is None
            assert not await db.bookings.cancel(later)
            assert await db.bookings.day_slots(["standesamt", "buergerbuero"], nine.start_ts - 3600,
                                               nine.start_ts + 86400) == [
                BookedSlot("standesamt", nine.start_ts, nine.end_ts, booked=2, checked_in=1)]

            # At the end of the day (Berlin) the rows go; the one nobody used counts as missed.
            assert await db.bookings.forget_past(forget_after(HOURS, nine) - 1) == 0
            assert await db.bookings.forget_past(forget_after(HOURS, nine)) == 2
            assert await db.bookings.find(codes[1]) is None
            assert await db.bookings.daily(MONDAY) == [BookingDay(MONDAY, "standesamt", booked=3, cancelled=1,
                                                                  kept=1, missed=1)]
            assert (await db.bookings.totals())[("standesamt", "missed")] == 1
        finally:
            await db.close()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_no_double_booking_when_many_book_the_same_slot_at_once(backend, tmp_path, request):
    async with database_url(backend, tmp_path, request) as url:
        centrals = await open_several(url, 4)
        try:
            slot = slots_of_day(HOURS, SlotSettings(15), MONDAY)[0]

            async def book(db: Database) -> str | None:
                try:
                    return await db.bookings.create("standesamt", slot, 3, forget_after(HOURS, slot))
                except BookingError:
                    return None

            results = await asyncio.gather(*(book(centrals[i % 4]) for i in range(24)))
            booked = [code for code in results if code]
            assert len(booked) == 3 == len(set(booked))
            assert await centrals[0].bookings.seats_taken("standesamt", MONDAY) == {slot.start_ts: 3}

            # The same code used at once from several places: exactly one visit gets it.
            used = await asyncio.gather(*(centrals[i % 4].bookings.check_in(booked[0], slot.start_ts)
                                          for i in range(12)))
            assert sorted(used) == [False] * 11 + [True]
            assert (await centrals[1].bookings.daily(MONDAY))[0].kept == 1
        finally:
            for db in centrals:
                await db.close()
