"""Persistent data of central: departments, staff, kiosks, sessions, anonymous counters.

Nothing about an individual visit is ever written here (see central.rooms).
"""
from central.storage.database import Database

__all__ = ["Database"]
