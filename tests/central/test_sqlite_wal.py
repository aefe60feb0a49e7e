"""Several centrals opening one fresh SQLite file together (e.g. the demo's and a test's), or
another program holding it: opening waits its turn instead of failing with "database is locked"."""
from __future__ import annotations

import asyncio
import sqlite3
import threading

import pytest

from central.storage import database
from central.storage.database import Database, StorageError


def _hold_write_lock(path, release: threading.Event) -> threading.Thread:
    """Another program writing to the file in the old journal mode, until ``release`` is set."""
    locked = threading.Event()

    def hold() -> None:
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        other.execute("CREATE TABLE other_program (x INTEGER)")
        locked.set()
        release.wait(30)
        other.execute("COMMIT")
        other.close()

    thread = threading.Thread(target=hold, daemon=True)
    thread.start()
    assert locked.wait(10)
    return thread


async def test_open_waits_for_a_writer_then_switches_to_wal(tmp_path):
    path = tmp_path / "central.db"
    release = threading.Event()
    holder = _hold_write_lock(path, release)
    # SQLite refuses the switch to WAL at once while the other holds its write lock (no busy wait):
    # opening must wait until it is through, not fail.
    asyncio.get_running_loop().call_later(0.5, release.set)
    db = await Database.open(f"sqlite:///{path}")
    try:
        assert release.is_set()
        assert await db.departments() == []
    finally:
        await db.close()
    holder.join(10)
    with sqlite3.connect(path) as check:
        assert check.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert check.execute("SELECT count(*) FROM other_program").fetchone()[0] == 0  # the other's work kept


async def test_a_file_held_too_long_gives_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(database, "WAL_SWITCH_TIMEOUT_S", 0.3)
    path = tmp_path / "central.db"
    release = threading.Event()
    holder = _hold_write_lock(path, release)
    try:
        with pytest.raises(StorageError, match="WAL mode.*another program may hold it open"):
            await Database.open(f"sqlite:///{path}")
    finally:
        release.set()
        holder.join(10)
