"""The bundles table, on SQLite and on a real PostgreSQL server (sizes beyond 2 GB, one row per file)."""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from central.storage.database import Database
from tests.central.test_storage import database_url

FIVE_GB = 5 * 1024**3


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_bundles_are_stored_listed_newest_first_and_removed(backend, tmp_path, request):
    async with database_url(backend, tmp_path, request) as url:
        db = await Database.open(url)
        try:
            row = dict(compatible="amtsklingel-rpi-arm64", signer="CN=Musterdorf", signed_at=1.5, uploaded_by="it")
            old = await db.bundles.add(version="1.0.0", size_bytes=FIVE_GB, sha256="a" * 64, uploaded_at=100.0, **row)
            new = await db.bundles.add(version="1.1.0", size_bytes=10, sha256="b" * 64, uploaded_at=200.0, **row)
            assert [b.id for b in await db.bundles.all()] == [new, old]
            assert (await db.bundles.get(old)).size_bytes == FIVE_GB
            assert (await db.bundles.by_sha256("b" * 64)).version == "1.1.0"
            with pytest.raises(sa.exc.IntegrityError):  # the same file twice
                await db.bundles.add(version="1.1.0", size_bytes=10, sha256="b" * 64, uploaded_at=300.0, **row)
            assert (await db.bundles.remove(old)).version == "1.0.0"
            assert await db.bundles.remove(old) is None and await db.bundles.get(old) is None
            assert [b.id for b in await db.bundles.all()] == [new]
        finally:
            await db.close()
