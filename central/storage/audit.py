"""The audit log: who did what in the admin area, and when.

One row per admin action (settings changed, a kiosk action sent, a kiosk enrolled, revoked or given
a new token). ``action`` is a short fixed key the admin page translates; ``target`` names what was
acted on ("kiosk:3", "kiosks:all"); ``detail`` is short and never holds a citizen's data or a token.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from central.storage import schema as t

DETAIL_MAX = 300


@dataclass(frozen=True)
class AuditEntry:
    at: float          # unix seconds
    staff_id: int | None
    staff_name: str    # the username at the time
    action: str
    target: str
    detail: str


def kiosk_target(kiosk_id: int | None) -> str:
    """The target naming one kiosk, or all kiosks (None)."""
    return "kiosks:all" if kiosk_id is None else f"kiosk:{kiosk_id}"


class AuditLog:
    def __init__(self, engine: AsyncEngine, clock=time.time):  # noqa: ANN001 - a () -> float
        self.engine = engine
        self.clock = clock

    async def record(self, staff_id: int | None, action: str, target: str, detail: str = "") -> None:
        """Write one entry. ``staff_id`` None: done by central itself (e.g. a command-line tool)."""
        async with self.engine.begin() as c:
            name = None
            if staff_id is not None:
                name = (await c.execute(sa.select(t.staff.c.username).where(t.staff.c.id == staff_id))).scalar()
            await c.execute(sa.insert(t.audit_log).values(
                at=self.clock(), staff_id=staff_id, staff_name=(name or "–")[:64], action=action[:40],
                target=target[:40], detail=detail[:DETAIL_MAX]))

    async def recent(self, limit: int = 200, target: str | None = None) -> list[AuditEntry]:
        """The newest entries first (only those about ``target``, if given)."""
        q = sa.select(t.audit_log).order_by(t.audit_log.c.at.desc(), t.audit_log.c.id.desc()).limit(limit)
        if target is not None:
            q = q.where(t.audit_log.c.target == target)
        async with self.engine.connect() as c:
            rows = (await c.execute(q)).all()
        return [AuditEntry(r.at, r.staff_id, r.staff_name, r.action, r.target, r.detail) for r in rows]
