"""The fleet's persisted rows and the fleet list query, on SQLite and PostgreSQL."""
from __future__ import annotations

import datetime as dt

import pytest

from central.storage import Database
from central.storage.fleet import FleetRow
from tests.central.test_storage import database_url


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_fleet_rows_are_upserted_in_batches_and_read_back(backend, tmp_path, request):
    async with database_url(backend, tmp_path, request) as url:
        db = await Database.open(url)
        try:
            a, _ = await db.create_kiosk("A")
            b, _ = await db.create_kiosk("B")
            day = dt.date(2026, 12, 3)
            await db.fleet.save([FleetRow(a, True, 100.0, 100.0, None, None, 0, None),
                                 FleetRow(b, False, 50.0, 60.0, "1.0", day, 2, 55.5),
                                 FleetRow(9999, True, 1.0, 1.0, None, None, 0, None)])  # no such kiosk: dropped
            assert await db.fleet.alive_until() is None
            await db.fleet.save([FleetRow(a, False, 200.0, 200.0, "1.1", day, 1, 150.0)], alive_at=300.0)
            await db.fleet.save([], alive_at=250.0)  # another process, its clock a little behind
            assert await db.fleet.alive_until() == 300.0
            await db.fleet.save([], alive_at=360.0)
            assert await db.fleet.alive_until() == 360.0
            rows = {r.kiosk_id: r for r in await db.fleet.load()}
            assert set(rows) == {a, b}
            assert rows[a] == FleetRow(a, False, 200.0, 200.0, "1.1", day, 1, 150.0)
            assert rows[b] == FleetRow(b, False, 50.0, 60.0, "1.0", day, 2, 55.5)

            await db.kiosk_settings.update(None, departments=["x"])
            await db.kiosk_settings.update(b, departments=["y", "z"])
            listed = {k.kiosk.id: k for k in await db.fleet.kiosks()}
            assert (listed[a].departments, listed[a].settings_version) == (("x",), 2)
            assert (listed[b].departments, listed[b].settings_version) == (("y", "z"), 3)
            assert [k.kiosk.location for k in await db.fleet.kiosks(only_id=b)] == ["B"]
        finally:
            await db.close()
