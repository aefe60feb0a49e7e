"""Remote settings of the kiosks: what applies to all kiosks, and what is set differently for one.

A kiosk's effective settings are the built-in defaults, overlaid by the all-kiosks row, overlaid by
the kiosk's own row. Its location lives in the kiosks table (clerks see it with each visit), so
``update(kiosk_id, location=...)`` writes it there. Departments left unset mean "every department,
in central's order", so a new department appears on every kiosk that does not pick its own.

Each row counts its changes; a kiosk's settings version is 1 + both counts, so it grows with every
change that affects the kiosk, whether made for it or for all kiosks.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import pydantic
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from central.storage import schema as t
from protocol import fleet as f
from protocol.errors import AmtsklingelError
from protocol.languages import CITIZEN_LANGUAGES

# The languages the kiosk page ships.
KIOSK_LANGUAGES: tuple[str, ...] = CITIZEN_LANGUAGES

# What a kiosk gets when nothing was set. Location and departments come from the kiosks and
# departments tables instead.
BUILT_IN: dict[str, Any] = {
    "default_language": "de",
    "languages": list(KIOSK_LANGUAGES),
    "volume_pct": 70,
    "mic_gain_db": 0,
    "brightness_pct": 100,
    "screen_off_outside_hours": False,
    "relay_only": False,
    "call_upload_kbit_s": f.DEFAULT_CALL_UPLOAD_KBIT_S,
}
# Values stored in the settings rows (location is not: see the module's docstring).
FIELDS: tuple[str, ...] = ("departments", *BUILT_IN)
ALL_KIOSKS = 0  # kiosk_id of the all-kiosks row


class SettingsError(AmtsklingelError, ValueError):
    """Settings that a kiosk could not use; nothing was stored."""


class KioskSettingsStore:
    def __init__(self, engine: AsyncEngine):
        self.engine = engine

    async def defaults(self) -> dict[str, Any]:
        """What applies to all kiosks: the built-in values overlaid by the all-kiosks row.

        ``departments`` is None while every department is offered, in central's order.
        """
        async with self.engine.connect() as c:
            rows = await _rows(c, [ALL_KIOSKS])
        return {"departments": None, **BUILT_IN, **rows.get(ALL_KIOSKS, ({}, 0))[0]}

    async def overrides(self, kiosk_id: int) -> dict[str, Any]:
        """Only the values set for this kiosk itself (not its location)."""
        async with self.engine.connect() as c:
            rows = await _rows(c, [kiosk_id])
        return dict(rows.get(kiosk_id, ({}, 0))[0])

    async def update(self, kiosk_id: int | None, **values: Any) -> None:
        """Set values for one kiosk, or for all kiosks (``kiosk_id=None``); a value None removes a
        kiosk's own value, so it follows the all-kiosks setting again (for all kiosks: the built-in one).

        Raises SettingsError, changing nothing, for unknown names or values a kiosk cannot use.
        """
        unknown = set(values) - set(FIELDS) - {"location"}
        if unknown:
            raise SettingsError(f"unknown setting(s): {', '.join(sorted(unknown))}")
        location = values.pop("location", None)
        row_id = ALL_KIOSKS if kiosk_id is None else kiosk_id
        if location is not None:
            if kiosk_id is None:
                raise SettingsError("a location is set per kiosk, not for all kiosks")
            if not isinstance(location, str) or not location.strip() or len(location) > 120:
                raise SettingsError("location: 1 to 120 characters")
        async with self.engine.begin() as c:
            await _ensure_rows(c, [row_id])
            rows = await _rows(c, [ALL_KIOSKS, row_id], lock=True)
            stored = dict(rows.get(row_id, ({}, 0))[0])
            for name, value in values.items():
                if value is None:
                    stored.pop(name, None)
                else:
                    stored[name] = list(value) if name in ("departments", "languages") else value
            below = BUILT_IN if kiosk_id is None else {**BUILT_IN, **rows.get(ALL_KIOSKS, ({}, 0))[0]}
            _check({**below, **stored})
            await c.execute(sa.update(t.kiosk_settings).where(t.kiosk_settings.c.kiosk_id == row_id).values(
                overrides=stored, version=t.kiosk_settings.c.version + 1))
            if location is not None:
                await c.execute(sa.update(t.kiosks).where(t.kiosks.c.id == kiosk_id).values(location=location))

    async def touch(self, kiosk_id: int | None = None) -> None:
        """Count a change made elsewhere that alters the settings (e.g. a department added or deleted)."""
        row_id = ALL_KIOSKS if kiosk_id is None else kiosk_id
        async with self.engine.begin() as c:
            await _ensure_rows(c, [row_id])
            await c.execute(sa.update(t.kiosk_settings).where(t.kiosk_settings.c.kiosk_id == row_id).values(
                version=t.kiosk_settings.c.version + 1))

    async def versions(self, kiosk_ids: Iterable[int]) -> dict[int, int]:
        """Each kiosk's settings version, without building its settings (one small query)."""
        wanted = set(kiosk_ids)
        async with self.engine.connect() as c:
            rows = dict((await c.execute(sa.select(t.kiosk_settings.c.kiosk_id, t.kiosk_settings.c.version))).all())
        common = rows.get(ALL_KIOSKS, 0)
        return {kiosk_id: 1 + common + rows.get(kiosk_id, 0) for kiosk_id in wanted}

    async def effective(self, kiosk_id: int, location: str, department_slugs: Iterable[str]) -> f.KioskSettings:
        """The settings this kiosk gets. ``location`` is its row's; ``department_slugs`` central's, in order."""
        return (await self.effective_many({kiosk_id: location}, department_slugs))[kiosk_id]

    async def effective_many(self, locations: Mapping[int, str],
                             department_slugs: Iterable[str]) -> dict[int, f.KioskSettings]:
        """``effective`` for several kiosks (kiosk id -> location) with one query."""
        slugs = list(department_slugs)
        async with self.engine.connect() as c:
            rows = await _rows(c, [ALL_KIOSKS, *locations])
        common, common_version = rows.get(ALL_KIOSKS, ({}, 0))
        out = {}
        for kiosk_id, location in locations.items():
            own, own_version = rows.get(kiosk_id, ({}, 0))
            merged = {**BUILT_IN, **common, **own}
            chosen = merged.get("departments")
            # A department deleted since it was picked drops out; the rest keep the admin's order.
            departments = slugs if chosen is None else [s for s in chosen if s in slugs]
            languages = [lang for lang in merged["languages"] if lang in KIOSK_LANGUAGES] or ["de"]
            default = merged["default_language"] if merged["default_language"] in languages else languages[0]
            out[kiosk_id] = f.KioskSettings(
                version=1 + common_version + own_version, location=location[:120] or "–", departments=departments,
                default_language=default, languages=languages, volume_pct=merged["volume_pct"],
                mic_gain_db=merged["mic_gain_db"], brightness_pct=merged["brightness_pct"],
                screen_off_outside_hours=merged["screen_off_outside_hours"], relay_only=merged["relay_only"],
                call_upload_kbit_s=merged["call_upload_kbit_s"])
        return out


def _check(values: dict[str, Any]) -> None:
    """Refuse what the protocol would refuse, and languages the kiosk page does not have."""
    probe = {"version": 1, "location": "–", "departments": [], **values}
    try:
        f.KioskSettings.model_validate(probe, strict=True)
    except pydantic.ValidationError as exc:
        names = ", ".join(str(e["loc"][0]) for e in exc.errors() if e["loc"])
        raise SettingsError(f"{names or 'settings'}: value cannot be used") from None
    languages = values.get("languages")
    if languages is not None:
        if not languages or any(lang not in KIOSK_LANGUAGES for lang in languages) or len(set(languages)) < len(
                languages):
            raise SettingsError(f"languages: use some of {', '.join(KIOSK_LANGUAGES)}, each once")
        if values.get("default_language") not in languages:
            raise SettingsError("default_language must be one of the languages offered")
    departments = values.get("departments")
    if departments is not None and len(set(departments)) < len(departments):
        raise SettingsError("departments: each department once")


async def _rows(c: AsyncConnection, kiosk_ids: Iterable[int], lock: bool = False) -> dict[int, tuple[dict, int]]:
    q = sa.select(t.kiosk_settings).where(t.kiosk_settings.c.kiosk_id.in_(set(kiosk_ids)))
    if lock:
        q = q.with_for_update()  # PostgreSQL: two admins saving at once both count; SQLite locks the file anyway
    return {r.kiosk_id: (dict(r.overrides), r.version) for r in (await c.execute(q)).all()}


async def _ensure_rows(c: AsyncConnection, row_ids: Iterable[int]) -> None:
    dialect = c.engine.dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    for row_id in row_ids:
        await c.execute(insert(t.kiosk_settings).values(kiosk_id=row_id, overrides={}, version=0)
                        .on_conflict_do_nothing(index_elements=["kiosk_id"]))
