"""Tables. SQLAlchemy Core, so the same definitions serve SQLite and PostgreSQL."""
from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

departments = sa.Table(
    "departments", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("slug", sa.String(40), nullable=False, unique=True),
    sa.Column("name", sa.String(120), nullable=False),
    sa.Column("languages", sa.JSON, nullable=False),   # ["de", "en", "tr"]
    sa.Column("hours", sa.JSON, nullable=False),       # central.hours.OfficeHours.to_dict()
    sa.Column("sort_order", sa.Integer, nullable=False, default=0),
)

staff = sa.Table(
    "staff", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("username", sa.String(64), nullable=False, unique=True),
    sa.Column("display_name", sa.String(120), nullable=False),
    sa.Column("password_hash", sa.String(200), nullable=False),
    sa.Column("role", sa.String(10), nullable=False),  # clerk | admin
    sa.Column("active", sa.Boolean, nullable=False, default=True),
)

staff_departments = sa.Table(
    "staff_departments", metadata,
    sa.Column("staff_id", sa.ForeignKey("staff.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("department_id", sa.ForeignKey("departments.id", ondelete="CASCADE"), primary_key=True),
)

kiosks = sa.Table(
    "kiosks", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("location", sa.String(120), nullable=False),
    # sha256 of a 256-bit random token: a slow hash buys nothing for random secrets.
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("revoked", sa.Boolean, nullable=False, default=False),
)

sessions = sa.Table(
    "sessions", metadata,
    sa.Column("token_hash", sa.String(64), primary_key=True),
    sa.Column("staff_id", sa.ForeignKey("staff.id", ondelete="CASCADE"), nullable=False),
    sa.Column("csrf_token", sa.String(64), nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False),
)

# One row per ended visit with no identifier, no time of day, no kiosk: only
# what the daily counters (visits, median wait, median duration) need.
visit_stats = sa.Table(
    "visit_stats", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("department", sa.String(40), nullable=False),
    sa.Column("day", sa.Date, nullable=False),
    sa.Column("wait_s", sa.Integer),      # None when the citizen left before pick-up
    sa.Column("duration_s", sa.Integer),  # None when there was no call
    sa.Index("ix_visit_stats_day", "day", "department"),
)
