"""Login attempt counters (central.storage.logins), once on SQLite and once on a real PostgreSQL server."""
from __future__ import annotations

import asyncio

import pytest
import sqlalchemy as sa

from central.storage import schema as t
from central.storage.database import Database
from central.storage.logins import Counter
from tests.central.test_storage import count, database_url


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_login_attempts_contract(backend, tmp_path, request):
    async with database_url(backend, tmp_path, request) as url:
        db = await Database.open(url)
        try:
            await logins_contract(db)
        finally:
            await db.close()


async def logins_contract(db: Database) -> None:
    logins = db.logins
    # One secret per day, the same for every process; asking again gives the same one.
    first = await logins.secret("2026-03-10")
    assert len(first) == 64 and await logins.secret("2026-03-10") == first
    assert await logins.secret("2026-03-11") != first
    assert await count(db, t.login_keys) == 1  # the older day's secret is gone

    def after_two(attempts: int) -> float:
        return 10.0 if attempts >= 2 else 0.0

    pair, place = Counter("p:acc:addr", "acc", after_two), Counter("i:addr", None, lambda n: 0.0)
    now, forget = 1000.0, 3600.0
    assert await logins.begin([pair, place], now, forget) == 0
    assert await logins.begin([pair, place], now + 1, forget) == 0  # the second sets a wait of 10 s
    assert await logins.waiting_accounts(now + 1) == {"acc": now + 11}
    # Refused while waiting, and a refused attempt counts nowhere (not even on counters without a wait).
    assert await logins.begin([place, pair], now + 5, forget) == pytest.approx(6)
    async with db.engine.connect() as c:
        rows = dict((await c.execute(sa.select(t.login_attempts.c.key, t.login_attempts.c.attempts))).all())
    assert rows == {"p:acc:addr": 2, "i:addr": 2}
    # Parallel attempts each count: none is lost.
    await asyncio.gather(*(logins.begin([place], now + 20, forget) for _ in range(5)))
    async with db.engine.connect() as c:
        assert (await c.execute(sa.select(t.login_attempts.c.attempts).where(
            t.login_attempts.c.key == "i:addr"))).scalar_one() == 7
    # Taking an attempt back lifts the wait it set; forgetting deletes.
    await logins.uncount(["i:addr"], ["p:acc:addr"], now + 21)
    assert await logins.waiting_accounts(now + 21) == {}
    assert await count(db, t.login_attempts) == 1
    # After an hour of quiet a counter starts again from one (and old rows are swept).
    assert await logins.begin([pair], now + 21 + forget + 1, forget) == 0
    assert await count(db, t.login_attempts) == 1
    # Unlock deletes every counter of the account.
    await logins.begin([Counter("a:acc", "acc", lambda n: 99.0)], now + 4000, forget)
    assert await logins.unlock("acc") == 2 and await count(db, t.login_attempts) == 0
