"""The fleet registry's counts and its batched writes (no database write per health report)."""
from __future__ import annotations

import asyncio
import datetime as dt
from zoneinfo import ZoneInfo

from central.fleet.persist import FleetWriter
from central.fleet.registry import FleetRegistry
from central.storage.fleet import FleetRow
from protocol import fleet as f
from tests.central.fleet_reports import health

BERLIN = ZoneInfo("Europe/Berlin")


class Clock:
    def __init__(self, at: dt.datetime):
        self.at = at.timestamp()

    def __call__(self) -> float:
        return self.at


class RecordingStore:
    """Stands in for FleetStore: keeps every batch it was asked to save."""

    def __init__(self) -> None:
        self.batches: list[list[FleetRow]] = []
        self.beats: list[float | None] = []
        self.saved = asyncio.Event()

    async def save(self, rows: list[FleetRow], alive_at: float | None = None) -> None:
        self.batches.append(rows)
        self.beats.append(alive_at)
        self.saved.set()


def test_calls_today_start_again_at_midnight_in_the_citys_time_zone():
    clock = Clock(dt.datetime(2026, 12, 3, 23, 30, tzinfo=BERLIN))
    fleet = FleetRegistry(clock=clock, zone=BERLIN)
    fleet.call_picked_up(7)
    fleet.call_picked_up(7)
    assert fleet.kiosks[7].calls_on(fleet.today()) == 2
    clock.at += 3600  # 00:30 the next day in Berlin (23:30 UTC: still "the 3rd" in UTC)
    assert fleet.kiosks[7].calls_on(fleet.today()) == 0
    fleet.call_picked_up(7)
    assert (fleet.kiosks[7].calls_on(fleet.today()), fleet.kiosks[7].last_call_at) == (1, clock.at)


async def test_health_reports_cost_no_write_and_a_connect_is_written_soon():
    clock = Clock(dt.datetime(2026, 12, 3, 10, 0, tzinfo=BERLIN))
    fleet, store = FleetRegistry(clock=clock), RecordingStore()
    writer = FleetWriter(fleet, store, every_s=3600, batch_s=0)
    task = asyncio.get_running_loop().create_task(writer.run())
    try:
        report = f.KioskHealth.model_validate(health())
        for kiosk_id in range(1, 4):
            fleet.kiosk_message(kiosk_id, report)  # a first report: its version is worth keeping
        fleet.take_dirty()
        for kiosk_id in range(1, 4):
            for _ in range(50):
                fleet.kiosk_message(kiosk_id, report)
        assert not fleet.dirty  # 150 reports of the same version: nothing to write
        fleet.kiosk_message(2, f.KioskHealth.model_validate(health(version="0.4.0")))  # updated
        await asyncio.sleep(0.05)
        assert store.batches == []  # that waits for the next write
        fleet.connected(9)  # a connect is written soon, and takes the waiting change along
        await asyncio.wait_for(store.saved.wait(), 5)
        assert [[(r.kiosk_id, r.version) for r in batch] for batch in store.batches] == [[(2, "0.4.0"), (9, None)]]
        assert store.beats == [clock.at] and not fleet.dirty
    finally:
        task.cancel()


async def test_a_failed_write_is_retried_with_the_next_batch():
    fleet = FleetRegistry()

    class Failing(RecordingStore):
        async def save(self, rows):
            raise OSError("disk full")

    writer = FleetWriter(fleet, Failing())
    fleet.connected(1)
    await writer.flush()
    assert fleet.dirty == {1}


def test_restore_takes_an_outage_from_centrals_last_heartbeat():
    fleet = FleetRegistry()
    fleet.restore([FleetRow(1, True, 100.0, 100.0, "1.0", None, 0, None),
                   FleetRow(2, False, 50.0, 50.0, None, dt.date(2026, 12, 3), 4, 40.0)], alive_until=160.0)
    assert (fleet.kiosks[1].online, fleet.kiosks[1].since, fleet.kiosks[1].last_seen) == (False, 160.0, 160.0)
    assert (fleet.kiosks[2].since, fleet.kiosks[2].calls, fleet.kiosks[2].version) == (50.0, 4, None)
