"""Queries used by central, behind one small class.

SQLite (aiosqlite) is the embedded default; PostgreSQL (asyncpg) serves several
central processes. Both speak through SQLAlchemy Core, so a query is written once.
"""
from __future__ import annotations

import hashlib
import itertools
import secrets
import sqlite3
import time
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from central.hours import OfficeHours
from central.storage import schema as t
from central.storage.audit import AuditLog
from central.storage.bookings import BookingStore
from central.storage.bundles import BundleStore
from central.storage.counters import Counters, DailyStats, TokenReuse, fold_legacy_visit_rows
from central.storage.fleet import FleetStore
from central.storage.home_visits import HomeVisitSettings
from central.storage.kiosk_settings import KioskSettingsStore
from central.storage.kiosk_units import KioskUnits
from central.storage.logins import LoginAttempts
from central.storage.staff_browsers import StaffBrowsers
from central.storage.updates import UpdateStore
from protocol.errors import AmtsklingelError

__all__ = ["DailyStats", "Database", "Department", "Kiosk", "Staff", "TokenReuse", "token_hash"]


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Department:
    id: int
    slug: str
    name: str
    languages: tuple[str, ...]
    hours: OfficeHours
    sort_order: int = 0
    # For visits from home: the office's telephone number (told when a browser has no camera and no
    # microphone), and how many visitors from home it takes at a time (None: central's online_cap).
    phone: str = ""
    online_cap: int | None = None


@dataclass(frozen=True)
class Staff:
    id: int
    username: str
    display_name: str
    role: str
    active: bool
    departments: frozenset[str]  # slugs

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


@dataclass(frozen=True)
class Kiosk:
    id: int
    location: str
    revoked: bool


def _async_url(url: str) -> str:
    if url.startswith("sqlite:"):
        return "sqlite+aiosqlite:" + url[len("sqlite:"):]
    if url.startswith("postgresql://"):
        return "postgresql+asyncpg://" + url[len("postgresql://"):]
    return url


# How long a central waits for the others that open a fresh SQLite file at the same moment.
WAL_SWITCH_TIMEOUT_S = 10.0


class StorageError(AmtsklingelError):
    """The database cannot be used as it is; the message says what to change."""


def _switch_to_wal(cur) -> None:  # noqa: ANN001 - a DBAPI cursor
    """Put a SQLite file into WAL mode (it stays so; later connections find it already done).

    The switch needs the file to itself, and SQLite refuses it at once, without waiting out
    busy_timeout, while another connection holds a write lock: it would otherwise risk a deadlock.
    That happens when several centrals open a fresh database together and one is creating the
    tables. So try again, briefly, until the others are through; give up with a clear word."""
    deadline = time.monotonic() + WAL_SWITCH_TIMEOUT_S
    for attempt in itertools.count(1):
        try:
            cur.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise StorageError(f"could not put the SQLite database into WAL mode ({exc}); another "
                                   "program may hold it open: stop it, or point database_url elsewhere") from exc
            time.sleep(min(0.2, 0.01 * attempt))  # runs on the driver's thread, never on the event loop


class Database(Counters):
    """Every query central makes; the anonymous counters are in central/storage/counters.py."""

    def __init__(self, engine: AsyncEngine):
        self.engine = engine
        self.logins = LoginAttempts(engine)
        self.kiosk_settings = KioskSettingsStore(engine)
        self.audit = AuditLog(engine)
        self.fleet = FleetStore(engine)
        self.kiosk_units = KioskUnits(engine)
        self.bundles = BundleStore(engine)
        self.updates = UpdateStore(engine)
        self.staff_browsers = StaffBrowsers(engine)
        self.bookings = BookingStore(engine)
        self.home_visits = HomeVisitSettings(engine)

    @classmethod
    async def open(cls, url: str) -> Database:
        engine = create_async_engine(_async_url(url))
        if engine.dialect.name == "sqlite":
            @sa.event.listens_for(engine.sync_engine, "connect")
            def _pragmas(conn, _record):  # noqa: ANN001 - DBAPI types
                cur = conn.cursor()
                cur.execute("PRAGMA foreign_keys=ON")
                # Writers queue behind each other instead of failing with "database is locked".
                cur.execute("PRAGMA busy_timeout=10000")
                _switch_to_wal(cur)
                cur.close()
        async with engine.begin() as conn:
            # Several central processes may start at once on a fresh database: serialise the
            # create_all (check, then CREATE) so the later ones see the tables instead of failing.
            if engine.dialect.name == "postgresql":
                await conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext('amtsklingel.schema'))"))
            elif engine.dialect.name == "sqlite":
                await conn.exec_driver_sql("BEGIN IMMEDIATE")
            await conn.run_sync(t.metadata.create_all)
            # There is no migration tool: new tables come from create_all, and the one change of an
            # existing table so far (per-visit rows -> daily counters) is done here, once.
            await fold_legacy_visit_rows(conn)
        return cls(engine)

    async def close(self) -> None:
        await self.engine.dispose()

    # -- departments ---------------------------------------------------------
    async def departments(self) -> list[Department]:
        async with self.engine.connect() as c:
            rows = (await c.execute(sa.select(t.departments).order_by(t.departments.c.sort_order,
                                                                      t.departments.c.name))).all()
        home = await self.home_visits.all()  # phone and cap for visits from home (home_visits.py)
        return [Department(r.id, r.slug, r.name, tuple(r.languages), OfficeHours.from_dict(r.hours), r.sort_order,
                           *home.get(r.slug, ("", None)))
                for r in rows]

    async def save_department(self, slug: str, name: str, languages: list[str], hours: OfficeHours,
                              sort_order: int = 0) -> None:
        values = dict(name=name, languages=list(languages), hours=hours.to_dict(), sort_order=sort_order)
        async with self.engine.begin() as c:
            updated = await c.execute(sa.update(t.departments).where(t.departments.c.slug == slug).values(**values))
            if updated.rowcount == 0:
                await c.execute(sa.insert(t.departments).values(slug=slug, **values))

    async def delete_department(self, slug: str) -> None:
        async with self.engine.begin() as c:
            await c.execute(sa.delete(t.departments).where(t.departments.c.slug == slug))
            await c.execute(sa.delete(t.home_visit_settings).where(t.home_visit_settings.c.department == slug))

    # -- staff ---------------------------------------------------------------
    async def create_staff(self, username: str, display_name: str, password_hash: str, role: str,
                           departments: list[str]) -> int:
        async with self.engine.begin() as c:
            staff_id = (await c.execute(sa.insert(t.staff).values(
                username=username, display_name=display_name, password_hash=password_hash, role=role,
                active=True))).inserted_primary_key[0]
            await self._set_departments(c, staff_id, departments)
        return staff_id

    async def update_staff(self, staff_id: int, *, display_name: str, role: str, active: bool,
                           departments: list[str], password_hash: str | None = None) -> None:
        values = dict(display_name=display_name, role=role, active=active)
        if password_hash:
            values["password_hash"] = password_hash
        async with self.engine.begin() as c:
            await c.execute(sa.update(t.staff).where(t.staff.c.id == staff_id).values(**values))
            await self._set_departments(c, staff_id, departments)
            if not active:
                await c.execute(sa.delete(t.sessions).where(t.sessions.c.staff_id == staff_id))

    @staticmethod
    async def _set_departments(c, staff_id: int, slugs: list[str]) -> None:  # noqa: ANN001
        await c.execute(sa.delete(t.staff_departments).where(t.staff_departments.c.staff_id == staff_id))
        if slugs:
            ids = (await c.execute(sa.select(t.departments.c.id).where(t.departments.c.slug.in_(slugs)))).scalars()
            rows = [{"staff_id": staff_id, "department_id": i} for i in ids]
            if rows:  # slugs may all be gone; an empty executemany would INSERT one row of NULLs
                await c.execute(sa.insert(t.staff_departments), rows)

    async def staff_credentials(self, username: str) -> tuple[int, str] | None:
        async with self.engine.connect() as c:
            row = (await c.execute(sa.select(t.staff.c.id, t.staff.c.password_hash).where(
                t.staff.c.username == username, t.staff.c.active.is_(True)))).first()
        return (row.id, row.password_hash) if row else None

    async def set_password_hash(self, staff_id: int, password_hash: str) -> None:
        async with self.engine.begin() as c:
            await c.execute(sa.update(t.staff).where(t.staff.c.id == staff_id).values(password_hash=password_hash))

    async def staff(self, staff_id: int) -> Staff | None:
        members = await self.all_staff(staff_id)
        return members[0] if members else None

    async def all_staff(self, only_id: int | None = None) -> list[Staff]:
        q = sa.select(t.staff).order_by(t.staff.c.username)
        if only_id is not None:
            q = q.where(t.staff.c.id == only_id)
        j = t.staff_departments.join(t.departments)
        async with self.engine.connect() as c:
            rows = (await c.execute(q)).all()
            lq = sa.select(t.staff_departments.c.staff_id, t.departments.c.slug).select_from(j)
            if only_id is not None:  # the session check on every request needs one member's links, not all
                lq = lq.where(t.staff_departments.c.staff_id == only_id)
            links = await c.execute(lq)
            by_staff: dict[int, set[str]] = {}
            for sid, slug in links:
                by_staff.setdefault(sid, set()).add(slug)
        return [Staff(r.id, r.username, r.display_name, r.role, r.active, frozenset(by_staff.get(r.id, ())))
                for r in rows]

    # -- sessions ------------------------------------------------------------
    async def create_session(self, staff_id: int, lifetime_s: float) -> tuple[str, str]:
        """Return (session token, csrf token). Only the token's hash is stored."""
        token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        async with self.engine.begin() as c:
            await c.execute(sa.delete(t.sessions).where(t.sessions.c.expires_at < time.time()))
            await c.execute(sa.insert(t.sessions).values(token_hash=token_hash(token), staff_id=staff_id,
                                                         csrf_token=csrf, expires_at=time.time() + lifetime_s))
        return token, csrf

    async def session(self, token: str) -> tuple[Staff, str] | None:
        """The logged-in staff member and the session's CSRF token, if the session is valid."""
        async with self.engine.connect() as c:
            row = (await c.execute(sa.select(t.sessions).where(t.sessions.c.token_hash == token_hash(token)))).first()
        if row is None or row.expires_at < time.time():
            return None
        member = await self.staff(row.staff_id)
        if member is None or not member.active:
            return None
        return member, row.csrf_token

    async def end_sessions(self, staff_id: int, keep: str | None = None) -> None:
        """Log a staff member out everywhere (except the session ``keep``, the token of the one asking)."""
        q = sa.delete(t.sessions).where(t.sessions.c.staff_id == staff_id)
        if keep is not None:
            q = q.where(t.sessions.c.token_hash != token_hash(keep))
        async with self.engine.begin() as c:
            await c.execute(q)

    async def staff_with_sessions(self, staff_ids: list[int]) -> list[Staff]:
        """Of these staff members, those who are active and still have a valid session, as they are now."""
        if not staff_ids:
            return []
        async with self.engine.connect() as c:
            alive = set((await c.execute(sa.select(t.sessions.c.staff_id).where(
                t.sessions.c.staff_id.in_(staff_ids), t.sessions.c.expires_at >= time.time()))).scalars())
        return [m for m in await self.all_staff() if m.id in alive and m.active]

    async def delete_session(self, token: str) -> None:
        async with self.engine.begin() as c:
            await c.execute(sa.delete(t.sessions).where(t.sessions.c.token_hash == token_hash(token)))

    # -- kiosks --------------------------------------------------------------
    async def create_kiosk(self, location: str) -> tuple[int, str]:
        """Register a kiosk; returns (id, secret token). The token is shown once, stored hashed."""
        token = secrets.token_urlsafe(32)
        async with self.engine.begin() as c:
            kid = (await c.execute(sa.insert(t.kiosks).values(location=location, token_hash=token_hash(token),
                                                              revoked=False))).inserted_primary_key[0]
        return kid, f"{kid}.{token}"

    async def kiosk_by_token(self, credential: str) -> Kiosk | None:
        _, _, token = credential.partition(".")
        async with self.engine.connect() as c:
            row = (await c.execute(sa.select(t.kiosks).where(t.kiosks.c.token_hash == token_hash(token)))).first()
        if row is None or row.revoked or credential.split(".", 1)[0] != str(row.id):
            return None
        return Kiosk(row.id, row.location, row.revoked)

    async def kiosks(self) -> list[Kiosk]:
        async with self.engine.connect() as c:
            rows = (await c.execute(sa.select(t.kiosks).order_by(t.kiosks.c.location))).all()
        return [Kiosk(r.id, r.location, r.revoked) for r in rows]

    async def revoke_kiosk(self, kiosk_id: int) -> None:
        """Revoke for good: the token's hash is replaced by one of a secret nobody ever saw, so no
        later change can bring the old token back. A new token (new_kiosk_token) brings the kiosk back."""
        async with self.engine.begin() as c:
            await c.execute(sa.update(t.kiosks).where(t.kiosks.c.id == kiosk_id).values(
                revoked=True, token_hash=token_hash(secrets.token_urlsafe(32))))

    async def new_kiosk_token(self, kiosk_id: int) -> str:
        """A new token for a kiosk (revoked or not); the old one stops working. Shown once, stored hashed."""
        token = secrets.token_urlsafe(32)
        async with self.engine.begin() as c:
            await c.execute(sa.update(t.kiosks).where(t.kiosks.c.id == kiosk_id).values(
                revoked=False, token_hash=token_hash(token)))
        return f"{kiosk_id}.{token}"

    # -- central's own secrets -------------------------------------------------
    async def secret(self, name: str) -> str:
        """The secret ``name``, created at random on first use; the same for every central instance."""
        async with self.engine.begin() as c:
            stored = (await c.execute(sa.select(t.settings.c.value).where(t.settings.c.name == name))).scalar()
        if stored is not None:
            return stored
        try:
            async with self.engine.begin() as c:
                await c.execute(sa.insert(t.settings).values(name=name, value=secrets.token_urlsafe(32)))
        except sa.exc.IntegrityError:
            pass  # another central instance created it first: use theirs
        async with self.engine.connect() as c:
            return (await c.execute(sa.select(t.settings.c.value).where(t.settings.c.name == name))).scalar_one()
