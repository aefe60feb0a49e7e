"""Which unit each kiosk is (kiosk_units), on SQLite and on a real PostgreSQL server."""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from central.storage.database import Database
from central.storage.kiosk_units import KioskUnit
from tests.central.test_storage import database_url


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_a_unit_is_recorded_once_and_enrolled_again_in_place(backend, tmp_path, request):
    async with database_url(backend, tmp_path, request) as url:
        db = await Database.open(url)
        try:
            first, _ = await db.create_kiosk("Rathaus")
            second, _ = await db.create_kiosk("Bücherei")
            assert await db.kiosk_units.by_serial("10000000abcdef01") is None
            await db.kiosk_units.record(first, "10000000abcdef01", "Raspberry Pi 4 Model B Rev 1.5", at=100.0)
            assert await db.kiosk_units.by_serial("10000000abcdef01") == KioskUnit(
                first, "10000000abcdef01", "Raspberry Pi 4 Model B Rev 1.5", 100.0)
            # Enrolled again (a new token): the same row, with the latest model text and time.
            await db.kiosk_units.record(first, "10000000abcdef01", "Raspberry Pi 4 Model B Rev 1.4", at=200.0)
            assert await db.kiosk_units.for_kiosks() == {
                first: KioskUnit(first, "10000000abcdef01", "Raspberry Pi 4 Model B Rev 1.4", 200.0)}
            # One serial is one kiosk: another kiosk cannot take it.
            with pytest.raises(sa.exc.IntegrityError):
                await db.kiosk_units.record(second, "10000000abcdef01", "Pi", at=300.0)
            assert (await db.kiosk_units.by_serial("10000000abcdef01")).kiosk_id == first
        finally:
            await db.close()
