"""Open consoles follow what the database says about their clerks.

An admin's change (departments, role, password, deactivation) or a logout reaches
the consoles connected to this process at once, through :func:`refresh`. A console
connected to another central process learns of it within CHECK_EVERY_S, when
:func:`watch` there compares its consoles with the database.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from aiohttp import web

log = logging.getLogger(__name__)

CHECK_EVERY_S = 10.0


async def refresh(app: web.Application, staff_ids: Iterable[int] | None = None,
                  reason: str = "your session has ended", resend: bool = False) -> None:
    """End the consoles of clerks without a valid session (saying ``reason``); give the others their
    current departments and role (with ``resend``, a fresh snapshot even if those did not change:
    the departments themselves did)."""
    hub = app["hub"]
    ids = list(hub.staff if staff_ids is None else staff_ids)
    current = {member.id: member for member in await app["db"].staff_with_sessions([i for i in ids
                                                                                      if i in hub.staff])}
    for staff_id in ids:
        peer = hub.staff.get(staff_id)
        if peer is None:
            continue
        member = current.get(staff_id)
        if member is None:
            hub.staff_revoked(staff_id, reason)
        elif resend or member != peer.staff:
            hub.staff_changed(member)


async def watch(app: web.Application) -> None:
    """Runs for the life of the process (started and cancelled by central.app)."""
    while True:
        await asyncio.sleep(CHECK_EVERY_S)
        try:
            await refresh(app)
        except Exception:  # the database may be away for a moment; try again next round
            log.exception("checking open consoles against the database failed")
