"""Per department, the settings of visits from home: the office's telephone number and its cap on visitors.

Kept in their own table (no migration tool: new tables come from create_all), read with the departments
(:meth:`central.storage.database.Database.departments` fills ``Department.phone`` and ``online_cap``).
"""
from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from central.storage import schema as t

PHONE_MAX = 40


class HomeVisitSettings:
    def __init__(self, engine: AsyncEngine):
        self.engine = engine

    async def all(self) -> dict[str, tuple[str, int | None]]:
        """department slug -> (phone, online cap or None)."""
        async with self.engine.connect() as c:
            rows = (await c.execute(sa.select(t.home_visit_settings))).all()
        return {r.department: (r.phone, r.online_cap) for r in rows}

    async def save(self, department: str, phone: str, online_cap: int | None) -> None:
        table = t.home_visit_settings
        async with self.engine.begin() as c:
            await c.execute(sa.delete(table).where(table.c.department == department))
            if phone or online_cap is not None:
                await c.execute(sa.insert(table).values(department=department, phone=phone, online_cap=online_cap))
