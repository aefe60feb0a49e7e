"""The update bundles central holds: one row per checked bundle (its file lies in the bundle directory)."""
from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from central.storage import schema as t

_b = t.bundles


@dataclass(frozen=True)
class BundleRow:
    id: int
    version: str
    compatible: str
    size_bytes: int
    sha256: str
    signer: str
    signed_at: float    # unix seconds
    uploaded_at: float  # unix seconds
    uploaded_by: str


def _row(r) -> BundleRow:  # noqa: ANN001 - a SQLAlchemy row
    return BundleRow(r.id, r.version, r.compatible, r.size_bytes, r.sha256, r.signer, r.signed_at, r.uploaded_at,
                     r.uploaded_by)


class BundleStore:
    def __init__(self, engine: AsyncEngine):
        self.engine = engine

    async def add(self, *, version: str, compatible: str, size_bytes: int, sha256: str, signer: str,
                  signed_at: float, uploaded_at: float, uploaded_by: str) -> int:
        """Store a checked bundle; its id. Raises sqlalchemy's IntegrityError if its sha256 is there already."""
        async with self.engine.begin() as c:
            return (await c.execute(sa.insert(_b).values(
                version=version, compatible=compatible[:120], size_bytes=size_bytes, sha256=sha256,
                signer=signer[:200], signed_at=signed_at, uploaded_at=uploaded_at,
                uploaded_by=uploaded_by[:64]))).inserted_primary_key[0]

    async def get(self, bundle_id: int) -> BundleRow | None:
        async with self.engine.connect() as c:
            row = (await c.execute(sa.select(_b).where(_b.c.id == bundle_id))).first()
        return _row(row) if row else None

    async def by_sha256(self, sha256: str) -> BundleRow | None:
        async with self.engine.connect() as c:
            row = (await c.execute(sa.select(_b).where(_b.c.sha256 == sha256))).first()
        return _row(row) if row else None

    async def all(self) -> list[BundleRow]:
        """Newest first."""
        async with self.engine.connect() as c:
            rows = (await c.execute(sa.select(_b).order_by(_b.c.uploaded_at.desc(), _b.c.id.desc()))).all()
        return [_row(r) for r in rows]

    async def remove(self, bundle_id: int) -> BundleRow | None:
        """Delete the row; the row as it was, None if there was none."""
        async with self.engine.begin() as c:
            row = (await c.execute(sa.select(_b).where(_b.c.id == bundle_id))).first()
            if row is not None:
                await c.execute(sa.delete(_b).where(_b.c.id == bundle_id))
        return _row(row) if row else None
