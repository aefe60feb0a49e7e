"""Which unit each kiosk is: the serial number and model it gave when it was enrolled by code."""
from __future__ import annotations

import time
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from central.storage import schema as t

_u = t.kiosk_units


@dataclass(frozen=True)
class KioskUnit:
    kiosk_id: int
    serial: str
    model: str
    enrolled_at: float  # unix seconds


class KioskUnits:
    def __init__(self, engine: AsyncEngine):
        self.engine = engine
        self._insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert

    async def by_serial(self, serial: str) -> KioskUnit | None:
        async with self.engine.connect() as c:
            row = (await c.execute(sa.select(_u).where(_u.c.serial == serial))).first()
        return KioskUnit(row.kiosk_id, row.serial, row.model, row.enrolled_at) if row else None

    async def for_kiosks(self) -> dict[int, KioskUnit]:
        """Every kiosk enrolled by code, by kiosk id."""
        async with self.engine.connect() as c:
            rows = (await c.execute(sa.select(_u))).all()
        return {r.kiosk_id: KioskUnit(r.kiosk_id, r.serial, r.model, r.enrolled_at) for r in rows}

    async def record(self, kiosk_id: int, serial: str, model: str, at: float | None = None) -> None:
        """The unit ``serial`` is now kiosk ``kiosk_id`` (enrolled, or enrolled again, just now).

        Raises sqlalchemy's IntegrityError if the serial belongs to another kiosk.
        """
        at = time.time() if at is None else at
        stmt = self._insert(_u).values(kiosk_id=kiosk_id, serial=serial, model=model[:120], enrolled_at=at)
        stmt = stmt.on_conflict_do_update(index_elements=[_u.c.kiosk_id],
                                          set_={"serial": serial, "model": model[:120], "enrolled_at": at})
        async with self.engine.begin() as c:
            await c.execute(stmt)
