"""The fleet's persisted part: one row per kiosk, written in batches by central/fleet/persist.py."""
from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from central.storage import schema as t
from central.storage.kiosk_settings import ALL_KIOSKS

if TYPE_CHECKING:
    from central.storage.database import Kiosk

_f = t.fleet_kiosks
_h = t.fleet_heartbeat
HEARTBEAT = "central"


@dataclass(frozen=True)
class FleetRow:
    kiosk_id: int
    online: bool
    since: float | None
    last_seen: float | None
    version: str | None
    calls_day: dt.date | None
    calls: int
    last_call_at: float | None


@dataclass(frozen=True)
class FleetKiosk:
    """A kiosk as the fleet page lists it."""

    kiosk: Kiosk
    departments: tuple[str, ...] | None  # the slugs it offers, in order; None: every department
    settings_version: int                # the version of its settings now (KioskSettingsStore's count)


class FleetStore:
    def __init__(self, engine: AsyncEngine):
        self.engine = engine
        self._insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert

    async def load(self) -> list[FleetRow]:
        """Every kiosk's row, in one query (at start-up)."""
        async with self.engine.connect() as c:
            rows = (await c.execute(sa.select(_f))).all()
        return [FleetRow(r.kiosk_id, r.online, r.since, r.last_seen, r.version, r.calls_day, r.calls, r.last_call_at)
                for r in rows]

    async def kiosks(self, only_id: int | None = None) -> list[FleetKiosk]:
        """Every kiosk (or one) with what the fleet page needs of its settings, in one query: the
        kiosks table joined with its own settings row and the all-kiosks row."""
        own, common = t.kiosk_settings.alias("own"), t.kiosk_settings.alias("common")
        q = (sa.select(t.kiosks.c.id, t.kiosks.c.location, t.kiosks.c.revoked, own.c.overrides, own.c.version,
                       common.c.overrides.label("common_overrides"), common.c.version.label("common_version"))
             .select_from(t.kiosks.outerjoin(own, own.c.kiosk_id == t.kiosks.c.id)
                          .outerjoin(common, common.c.kiosk_id == ALL_KIOSKS))
             .order_by(t.kiosks.c.location, t.kiosks.c.id))
        if only_id is not None:
            q = q.where(t.kiosks.c.id == only_id)
        async with self.engine.connect() as c:
            rows = (await c.execute(q)).all()
        from central.storage.database import Kiosk  # database.py imports this module

        out = []
        for r in rows:
            # As KioskSettingsStore.effective_many merges them (a test keeps the two equal): the kiosk's own
            # choice, else the all-kiosks one, else None (every department); the version counts both rows.
            chosen = (r.overrides or {}).get("departments", (r.common_overrides or {}).get("departments"))
            out.append(FleetKiosk(Kiosk(r.id, r.location, r.revoked), tuple(chosen) if chosen is not None else None,
                                  1 + (r.common_version or 0) + (r.version or 0)))
        return out

    async def alive_until(self) -> float | None:
        """The last heartbeat of the central process(es) that wrote the rows."""
        async with self.engine.connect() as c:
            return (await c.execute(sa.select(sa.func.max(_h.c.at)))).scalar()

    async def save(self, rows: list[FleetRow], alive_at: float | None = None) -> None:
        """Insert or update these rows in one transaction, with central's heartbeat ``alive_at``.
        Rows of kiosks no longer registered are dropped."""
        async with self.engine.begin() as c:
            if alive_at is not None:
                await c.execute(self._insert(_h).values(name=HEARTBEAT, at=alive_at).on_conflict_do_update(
                    index_elements=[_h.c.name], set_={"at": sa.case((_h.c.at > alive_at, _h.c.at), else_=alive_at)}))
            if not rows:
                return
            known = set((await c.execute(sa.select(t.kiosks.c.id).where(
                t.kiosks.c.id.in_([r.kiosk_id for r in rows])))).scalars())
            values = [asdict(r) for r in rows if r.kiosk_id in known]
            if not values:
                return
            stmt = self._insert(_f)
            await c.execute(stmt.on_conflict_do_update(
                index_elements=[_f.c.kiosk_id],
                set_={name: stmt.excluded[name] for name in values[0] if name != "kiosk_id"}), values)
