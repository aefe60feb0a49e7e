"""The scale benchmark's own database: departments open at every hour, kiosks, clerks serving 1-3 departments
each, and a logged-in session for every clerk (written straight into the database: 500 argon2 logins would take
minutes of the two cores and measure the password hash, not the hub)."""
from __future__ import annotations

import random
from dataclasses import dataclass

SESSION_LIFETIME_S = 3600.0
CLERK_PASSWORD_HASH = "!"   # no password logs in: the bench's clerks only ever use the sessions made here


@dataclass(frozen=True)
class Seeded:
    departments: list[str]
    kiosks: list[tuple[str, str]]               # (token, the department its visits go to)
    consoles: list[tuple[str, frozenset[str]]]  # (session token, the departments it serves)

    def consoles_of(self, department: str) -> int:
        return sum(department in served for _, served in self.consoles)


def department_slugs(count: int) -> list[str]:
    return [f"amt-{i:02d}" for i in range(1, count + 1)]


def plan_clerks(departments: list[str], clerks: int, rng: random.Random) -> list[list[str]]:
    """Each clerk serves 1-3 departments; clerk i's first is department i mod count, so every department has
    clerks as soon as there are as many clerks as departments."""
    out = []
    for i in range(clerks):
        first = departments[i % len(departments)]
        others = rng.sample([d for d in departments if d != first], k=min(rng.randint(0, 2), len(departments) - 1))
        out.append([first, *others])
    return out


async def seed(database_url: str, *, departments: int, kiosks: int, clerks: int, seed_value: int = 13) -> Seeded:
    """Create everything before central starts: departments through central's storage API, the many kiosks,
    clerks and sessions as the API writes them (same tables, same token hashing) but in one transaction, since
    thousands of single commits would take the disk's time, not the benchmark's."""
    import secrets
    import time

    import sqlalchemy as sa

    from central.hours import OfficeHours
    from central.seed import ALWAYS
    from central.storage import Database
    from central.storage import schema as t
    from central.storage.database import token_hash

    rng = random.Random(seed_value)
    slugs = department_slugs(departments)
    db = await Database.open(database_url)
    try:
        for order, slug in enumerate(slugs):
            await db.save_department(slug, f"Amt {order + 1}", ["de", "en"], OfficeHours.from_dict(ALWAYS),
                                     sort_order=order)
        kiosk_rows, kiosk_list = [], []
        for i in range(1, kiosks + 1):
            token = secrets.token_urlsafe(32)
            kiosk_rows.append({"id": i, "location": f"Scale-Kiosk {i:05d}", "token_hash": token_hash(token),
                               "revoked": False})
            kiosk_list.append((f"{i}.{token}", slugs[(i - 1) % len(slugs)]))
        staff_rows, link_rows, session_rows, console_list = [], [], [], []
        expires = time.time() + SESSION_LIFETIME_S
        async with db.engine.begin() as c:
            ids = dict((await c.execute(sa.select(t.departments.c.slug, t.departments.c.id))).all())
            for i, served in enumerate(plan_clerks(slugs, clerks, rng), start=1):
                staff_rows.append({"id": i, "username": f"scale-clerk-{i:04d}", "display_name": f"Clerk {i}",
                                   "password_hash": CLERK_PASSWORD_HASH, "role": "clerk", "active": True})
                link_rows += [{"staff_id": i, "department_id": ids[slug]} for slug in served]
                token = secrets.token_urlsafe(32)
                session_rows.append({"token_hash": token_hash(token), "staff_id": i,
                                     "csrf_token": secrets.token_urlsafe(32), "expires_at": expires})
                console_list.append((token, frozenset(served)))
            for table, rows in ((t.kiosks, kiosk_rows), (t.staff, staff_rows), (t.staff_departments, link_rows),
                                (t.sessions, session_rows)):
                if rows:
                    await c.execute(sa.insert(table), rows)
    finally:
        await db.close()
    return Seeded(slugs, kiosk_list, console_list)
