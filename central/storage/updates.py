"""Rollouts and the kiosks' update reports (tables in schema.py; the rules in central/updates/)."""
from __future__ import annotations

import dataclasses

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from central.storage import schema as t
from central.updates.book import KioskUpdate
from central.updates.rings import PauseReason, Rollout

_r, _k = t.update_rollouts, t.kiosk_updates
STATUS_FIELDS = ("version", "state", "progress_pct", "downloaded_bytes", "fault", "check", "running_version",
                 "reboot_at", "updated_at")


def _rollout(r) -> Rollout:  # noqa: ANN001 - a Row
    pause = (PauseReason(r.pause_kiosk, r.pause_state, r.pause_fault, r.pause_check, r.pause_at or 0.0)
             if r.pause_kiosk is not None else None)
    return Rollout(id=r.id, bundle_id=r.bundle_id, version=r.version, size_bytes=r.size_bytes, sha256=r.sha256,
                   path=r.path, canary=frozenset(r.canary), window=r.window, max_kbit_s=r.max_kbit_s, ring=r.ring,
                   percent=r.percent, state=r.state, pause=pause, started_at=r.started_at, started_by=r.started_by,
                   ended_at=r.ended_at)


def _changeable(rollout: Rollout) -> dict:
    p = rollout.pause
    return dict(ring=rollout.ring, percent=rollout.percent, state=rollout.state, ended_at=rollout.ended_at,
                pause_kiosk=p and p.kiosk_id, pause_state=p and p.state, pause_fault=p and p.fault,
                pause_check=p and p.check, pause_at=p and p.at)


class UpdateStore:
    def __init__(self, engine: AsyncEngine):
        self.engine = engine
        self._insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert

    async def live_rollout(self) -> Rollout | None:
        """The active or paused rollout, if any."""
        async with self.engine.connect() as c:
            row = (await c.execute(sa.select(_r).where(_r.c.state != "stopped").order_by(_r.c.id.desc())
                                   .limit(1))).first()
        return _rollout(row) if row is not None else None

    async def rollouts(self, limit: int = 10) -> list[Rollout]:
        """The newest first."""
        async with self.engine.connect() as c:
            rows = (await c.execute(sa.select(_r).order_by(_r.c.id.desc()).limit(limit))).all()
        return [_rollout(r) for r in rows]

    async def start(self, rollout: Rollout, stopped_at: float) -> Rollout:
        """Store a new rollout (its ``id`` is given here); every other one that is still live stops."""
        changeable = _changeable(rollout)
        values = {f.name: getattr(rollout, f.name) for f in dataclasses.fields(rollout)
                  if f.name not in ("id", "pause", "canary", *changeable)}
        async with self.engine.begin() as c:
            await c.execute(sa.update(_r).where(_r.c.state != "stopped").values(state="stopped", ended_at=stopped_at))
            new_id = (await c.execute(sa.insert(_r).values(**values, **changeable,
                                                           canary=sorted(rollout.canary)))).inserted_primary_key[0]
        return dataclasses.replace(rollout, id=new_id)

    async def save(self, rollout: Rollout) -> None:
        """Store what changes in a rollout's life: its rings, its state, why it paused."""
        async with self.engine.begin() as c:
            await c.execute(sa.update(_r).where(_r.c.id == rollout.id).values(**_changeable(rollout)))

    async def statuses(self) -> list[KioskUpdate]:
        async with self.engine.connect() as c:
            rows = (await c.execute(sa.select(_k))).all()
        return [KioskUpdate(r.kiosk_id, r.bundle_id, **{name: getattr(r, name) for name in STATUS_FIELDS})
                for r in rows]

    async def save_statuses(self, statuses: list[KioskUpdate]) -> None:
        """Insert or update these reports in one transaction; reports of kiosks no longer registered are dropped."""
        if not statuses:
            return
        async with self.engine.begin() as c:
            known = set((await c.execute(sa.select(t.kiosks.c.id).where(
                t.kiosks.c.id.in_({s.kiosk_id for s in statuses})))).scalars())
            values = [{"kiosk_id": s.kiosk_id, "bundle_id": s.bundle_id, **{n: getattr(s, n) for n in STATUS_FIELDS}}
                      for s in statuses if s.kiosk_id in known]
            if not values:
                return
            stmt = self._insert(_k)
            await c.execute(stmt.on_conflict_do_update(index_elements=[_k.c.kiosk_id, _k.c.bundle_id],
                                                       set_={n: stmt.excluded[n] for n in STATUS_FIELDS}), values)
