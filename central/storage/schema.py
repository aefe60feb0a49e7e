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

# Per department and day: counts and sums only (central/storage/counters.py). No row
# stands for one visit, so a flood can add to a day's numbers but leaves no trace of any
# visit. (Earlier versions kept a row per visit in "visit_stats"; Database.open folds
# those into these counters and drops that table.)
daily_visits = sa.Table(
    "daily_visits", metadata,
    sa.Column("department", sa.String(40), primary_key=True),
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("visits", sa.Integer, nullable=False),          # ended visits, except ones cancelled at once
    sa.Column("calls", sa.Integer, nullable=False),           # of which a clerk talked with the citizen
    sa.Column("call_failures", sa.Integer, nullable=False),   # calls whose media never connected
    sa.Column("wait_sum_s", sa.BigInteger, nullable=False),
    sa.Column("duration_sum_s", sa.BigInteger, nullable=False),
)

# Waits and call durations as counts per bucket (central/storage/histogram.py), for medians.
daily_histogram = sa.Table(
    "daily_histogram", metadata,
    sa.Column("department", sa.String(40), primary_key=True),
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("measure", sa.String(10), primary_key=True),  # wait | duration
    sa.Column("bucket_s", sa.Integer, primary_key=True),     # the bucket's lower edge in seconds
    sa.Column("count", sa.Integer, nullable=False),
)

# A kiosk token seen on two connections at once (two units, one token: a cloned SD card).
kiosk_token_reuse = sa.Table(
    "kiosk_token_reuse", metadata,
    sa.Column("kiosk_id", sa.ForeignKey("kiosks.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("times", sa.Integer, nullable=False),
    sa.Column("last_at", sa.Float, nullable=False),  # unix seconds
)

# Login attempts per client address, per account and per pair, for central.web.throttle.
# Keys are keyed hashes (HMAC with the day's secret in login_keys), never a name or an
# address in clear; a row goes once its client has been quiet for an hour.
login_attempts = sa.Table(
    "login_attempts", metadata,
    sa.Column("key", sa.String(80), primary_key=True),  # "a:<account>", "i:<address>" or "p:<account>:<address>"
    sa.Column("account", sa.String(32)),                # the account's hash, so an admin can unlock it
    sa.Column("attempts", sa.Integer, nullable=False),  # failed ones, and the one being checked now
    sa.Column("last_attempt", sa.Float, nullable=False),
    sa.Column("blocked_until", sa.Float, nullable=False),
    sa.Index("ix_login_attempts_account", "account"),
)

# The HMAC secret of each day; older ones are deleted, so yesterday's hashes can no
# longer be linked to anyone.
login_keys = sa.Table(
    "login_keys", metadata,
    sa.Column("day", sa.String(10), primary_key=True),  # UTC, YYYY-MM-DD
    sa.Column("secret", sa.String(64), nullable=False),
)

# Central's own secrets, created on first start and shared by every central instance
# (e.g. "resume_token_key", which signs the resume tokens kiosks hold). Nothing about visits.
settings = sa.Table(
    "settings", metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("value", sa.String(200), nullable=False),
)

# Remote settings of the kiosks (central/storage/kiosk_settings.py). The row with kiosk_id 0 holds
# what applies to all kiosks; a kiosk's own row only the values set differently for it. "version"
# counts the changes of the row, so a kiosk's settings version (the sum) grows with every change
# that affects it.
kiosk_settings = sa.Table(
    "kiosk_settings", metadata,
    sa.Column("kiosk_id", sa.Integer, primary_key=True),  # 0: all kiosks; no foreign key, kiosks are never deleted
    sa.Column("overrides", sa.JSON, nullable=False),      # {"volume_pct": 60, "departments": ["a", "b"], ...}
    sa.Column("version", sa.Integer, nullable=False),
)

# Who did what in the admin area, and when (central/storage/audit.py). Staff and kiosk ids and short
# codes only: never a citizen's data, never a token.
audit_log = sa.Table(
    "audit_log", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("at", sa.Float, nullable=False),            # unix seconds
    sa.Column("staff_id", sa.ForeignKey("staff.id", ondelete="SET NULL")),
    sa.Column("staff_name", sa.String(64), nullable=False),  # the username then, kept if the account goes
    sa.Column("action", sa.String(40), nullable=False),   # e.g. "settings.kiosk", "kiosk.revoke"
    sa.Column("target", sa.String(40), nullable=False),   # e.g. "kiosk:3", "kiosks:all"
    sa.Column("detail", sa.String(300), nullable=False),
    sa.Index("ix_audit_log_at", "at"),
)

# What the fleet page must still know after a restart of central (central/fleet/): when each
# kiosk was last seen, since when it is offline, its version, and today's calls (a count, no visit).
# (Which departments it offers is in kiosk_settings, read with the kiosk list: central/storage/fleet.py.)
# Written in batches (on connect and disconnect, else at most every minute), never per health report.
fleet_kiosks = sa.Table(
    "fleet_kiosks", metadata,
    sa.Column("kiosk_id", sa.ForeignKey("kiosks.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("online", sa.Boolean, nullable=False),
    sa.Column("since", sa.Float),                  # unix seconds: connected, or went offline
    sa.Column("last_seen", sa.Float),              # unix seconds
    sa.Column("version", sa.String(64)),
    sa.Column("calls_day", sa.Date),               # the city's day that "calls" counts
    sa.Column("calls", sa.Integer, nullable=False),
    sa.Column("last_call_at", sa.Float),           # unix seconds
)

# Which unit (hardware) each enrolled kiosk is, from its enrol.hello (central/storage/kiosk_units.py):
# a unit enrolled again by code gets its old kiosk back (new token, same settings).
kiosk_units = sa.Table(
    "kiosk_units", metadata,
    sa.Column("kiosk_id", sa.ForeignKey("kiosks.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("serial", sa.String(64), nullable=False, unique=True),
    sa.Column("model", sa.String(120), nullable=False),
    sa.Column("enrolled_at", sa.Float, nullable=False),  # unix seconds, of the latest enrolment
)

# What each clerk's browser took in their last call (central/storage/staff_browsers.py): city IT learns
# which consoles lack H.264, for whom a Pi 4 kiosk encodes VP8 in software. One row per account, overwritten.
staff_browsers = sa.Table(
    "staff_browsers", metadata,
    sa.Column("staff_id", sa.ForeignKey("staff.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("browser", sa.String(40), nullable=False),   # "Firefox 128", from the console's User-Agent
    sa.Column("h264", sa.Boolean, nullable=False),         # its answer listed H.264
    sa.Column("video", sa.String(16), nullable=False),     # the video codec it answered first, or "none"
    sa.Column("at", sa.Float, nullable=False),             # unix seconds
)

# Until when central was alive (written with each batch of fleet_kiosks, at least every minute): a
# kiosk whose row says online was online then, so after a crash it is offline since that time.
fleet_heartbeat = sa.Table(
    "fleet_heartbeat", metadata,
    sa.Column("name", sa.String(40), primary_key=True),
    sa.Column("at", sa.Float, nullable=False),     # unix seconds
)

# Update bundles IT uploaded (central/storage/bundles.py), each checked before it was stored: signed by
# the city's key, for these units, intact. The file is <bundle directory>/<sha256>.raucb.
bundles = sa.Table(
    "bundles", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("version", sa.String(64), nullable=False),      # the manifest's [update] version
    sa.Column("compatible", sa.String(120), nullable=False),  # the manifest's [update] compatible
    sa.Column("size_bytes", sa.BigInteger, nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False, unique=True),  # of the whole file
    sa.Column("signer", sa.String(200), nullable=False),      # subject of the signing certificate
    sa.Column("signed_at", sa.Float, nullable=False),         # unix seconds, the signature's signing time
    sa.Column("uploaded_at", sa.Float, nullable=False),       # unix seconds
    sa.Column("uploaded_by", sa.String(64), nullable=False),  # staff username, or "command line"
)

# Rollouts of update bundles to the kiosks (central/updates/). At most one is active or paused; a new one
# stops it. Kept after they end, for the record. The bundle's facts are copied in, so offers need no
# other table (bundles are stored by central/storage/bundles.py).
update_rollouts = sa.Table(
    "update_rollouts", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("bundle_id", sa.Integer, nullable=False),
    sa.Column("version", sa.String(64), nullable=False),
    sa.Column("size_bytes", sa.BigInteger, nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("path", sa.String(200), nullable=False),       # the download endpoint's path
    sa.Column("canary", sa.JSON, nullable=False),            # [kiosk id, ...]
    sa.Column("window", sa.String(20), nullable=False),      # outside_hours | now
    sa.Column("max_kbit_s", sa.Integer),
    sa.Column("ring", sa.String(10), nullable=False),        # canary | percent | all: the widest ring open
    sa.Column("percent", sa.Integer, nullable=False),
    sa.Column("state", sa.String(10), nullable=False),       # active | paused | stopped
    sa.Column("pause_kiosk", sa.Integer),                    # why it paused: which kiosk reported what
    sa.Column("pause_state", sa.String(12)),
    sa.Column("pause_fault", sa.String(30)),
    sa.Column("pause_check", sa.String(30)),
    sa.Column("pause_at", sa.Float),
    sa.Column("started_at", sa.Float, nullable=False),       # unix seconds
    sa.Column("started_by", sa.String(64), nullable=False),  # the admin's username then
    sa.Column("ended_at", sa.Float),
)

# Each kiosk's last update.status per bundle (codes and numbers only), written in batches
# (central/updates/persist.py). A row exists once central offered the bundle to the kiosk.
kiosk_updates = sa.Table(
    "kiosk_updates", metadata,
    sa.Column("kiosk_id", sa.ForeignKey("kiosks.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("bundle_id", sa.Integer, primary_key=True),
    sa.Column("version", sa.String(64), nullable=False),
    sa.Column("state", sa.String(12), nullable=False),
    sa.Column("progress_pct", sa.Integer),
    sa.Column("downloaded_bytes", sa.BigInteger),
    sa.Column("fault", sa.String(30)),
    sa.Column("check", sa.String(30)),
    sa.Column("running_version", sa.String(64)),
    sa.Column("reboot_at", sa.String(40)),
    sa.Column("updated_at", sa.Float, nullable=False),       # unix seconds
)

# Appointments (central/storage/bookings.py). Per department the slot grid's settings; no row: no booking.
booking_settings = sa.Table(
    "booking_settings", metadata,
    sa.Column("department", sa.String(40), primary_key=True),
    sa.Column("slot_minutes", sa.Integer, nullable=False),
    sa.Column("parallel", sa.Integer, nullable=False),    # citizens per slot
    sa.Column("days_ahead", sa.Integer, nullable=False),
)

# One row per booked appointment, deleted at the end of its day (or when cancelled). No name, no address:
# the code's hash is its only key. A slot of a department has seats 0 .. parallel-1; the unique seat is
# what makes a double booking impossible, even with several central processes booking at once.
bookings = sa.Table(
    "bookings", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("code_hash", sa.String(64), nullable=False, unique=True),  # sha256 of the booking code
    sa.Column("department", sa.String(40), nullable=False),
    sa.Column("slot_start", sa.BigInteger, nullable=False),  # unix seconds
    sa.Column("slot_end", sa.BigInteger, nullable=False),
    sa.Column("seat", sa.Integer, nullable=False),
    sa.Column("day", sa.Date, nullable=False),              # the slot's date in the department's time zone
    sa.Column("forget_at", sa.BigInteger, nullable=False),   # unix seconds: the end of that day
    sa.Column("checked_in_at", sa.Float),                    # unix seconds, once the citizen came
    sa.UniqueConstraint("department", "slot_start", "seat", name="uq_bookings_seat"),
    sa.CheckConstraint("seat >= 0", name="ck_bookings_seat"),
    sa.Index("ix_bookings_forget_at", "forget_at"),
    sa.Index("ix_bookings_department_day", "department", "day"),
)

# What remains of bookings: counts per department and the appointment's day.
daily_bookings = sa.Table(
    "daily_bookings", metadata,
    sa.Column("department", sa.String(40), primary_key=True),
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("booked", sa.Integer, nullable=False),     # bookings made for that day
    sa.Column("cancelled", sa.Integer, nullable=False),  # of which cancelled by the citizen
    sa.Column("kept", sa.Integer, nullable=False),       # of which the citizen checked in
    sa.Column("missed", sa.Integer, nullable=False),     # of which nobody came (counted when deleted)
)

# Visits from home (central/storage/home_visits.py), per department: the telephone number a citizen without
# microphone is told, and how many visitors from home it takes at a time (NULL: central's setting). No row:
# no number, central's setting.
home_visit_settings = sa.Table(
    "home_visit_settings", metadata,
    sa.Column("department", sa.String(40), primary_key=True),
    sa.Column("phone", sa.String(40), nullable=False, default=""),
    sa.Column("online_cap", sa.Integer, nullable=True),
)
