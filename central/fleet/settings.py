"""Remote settings and actions on their way to the kiosks.

The settings live in the database (central/storage/kiosk_settings.py); this module sends the
effective settings to the connected kiosks after a change, and kiosk actions (self-test,
restart, reboot) with the check that no citizen is waiting at the kiosk or talking to a clerk.
"""
from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

from aiohttp import web

from protocol import fleet as f

log = logging.getLogger(__name__)

ACTIONS: tuple[str, ...] = f.KioskAction.model_fields["action"].annotation.__args__
ACTIONS_KEPT = 10  # per kiosk, for its page
CHECK_EVERY_S = 10.0


async def push(app: web.Application, kiosk_ids: Iterable[int] | None = None) -> int:
    """Send the current settings to these kiosks (None: every connected kiosk) if connected.

    Returns how many kiosks got them. One query for the settings, one for the locations.
    """
    hub, db = app["hub"], app["db"]
    wanted = set(hub.kiosks) if kiosk_ids is None else set(kiosk_ids) & set(hub.kiosks)
    if not wanted:
        return 0
    locations = {k.id: k.location for k in await db.kiosks() if k.id in wanted}
    settings = await db.kiosk_settings.effective_many(locations, list(hub.departments))
    for kiosk_id, values in settings.items():
        hub.send_settings(kiosk_id, values)
    log.info("settings sent to %d kiosk(s)", len(settings))
    return len(settings)


async def watch(app: web.Application) -> None:
    """Runs for the life of the process (started and cancelled by central.app).

    Every CHECK_EVERY_S: a kiosk whose settings were changed through another central process gets
    them; and when a department opens or closes, every kiosk hears it (a fresh ``welcome`` on its
    open connection), so its list of open offices, and its screen outside office hours, follow.
    """
    opened = None  # the first round only notes the state: the departments may be loaded after the start
    while True:
        await asyncio.sleep(CHECK_EVERY_S)
        try:
            opened = await check(app, opened)
        except Exception:  # the database may be away for a moment; try again next round
            log.exception("checking the kiosks' settings failed")


async def check(app: web.Application, opened: tuple | None) -> tuple:
    """One round of :func:`watch`; ``opened`` is the departments' state the kiosks know (None: not known)."""
    await resync(app)
    now_open = open_state(app["hub"])
    if opened is not None and now_open != opened:
        app["hub"].resend_departments()
    return now_open


async def resync(app: web.Application) -> int:
    """Send their settings to connected kiosks that have other ones than the database says."""
    hub, db = app["hub"], app["db"]
    # Every change counts in the version, so comparing versions finds them without building every
    # kiosk's settings: with thousands of kiosks connected, a round costs one small query.
    versions = await db.kiosk_settings.versions(list(hub.kiosks))
    stale = [kiosk_id for kiosk_id, version in versions.items()
             if (peer := hub.kiosks.get(kiosk_id)) is not None and (peer.settings is None
                                                                 or peer.settings.version != version)]
    return await push(app, stale) if stale else 0


def open_state(hub) -> tuple:  # noqa: ANN001 - Hub
    return tuple((d.slug, d.open) for d in hub.department_info())


@dataclass(frozen=True)
class SentAction:
    action_id: str
    action: str
    forced: bool
    at: float  # unix seconds


@dataclass
class ActionBook:
    """The actions sent to each kiosk lately (memory only); their outcome is in the fleet registry."""

    sent: dict[int, deque[SentAction]] = field(default_factory=dict)

    def add(self, kiosk_id: int, action: str, forced: bool) -> SentAction:
        entry = SentAction(secrets.token_urlsafe(12), action, forced, time.time())
        self.sent.setdefault(kiosk_id, deque(maxlen=ACTIONS_KEPT)).appendleft(entry)
        return entry

    def of(self, kiosk_id: int) -> list[SentAction]:
        return list(self.sent.get(kiosk_id, ()))


def kiosk_busy(app: web.Application, kiosk_id: int) -> bool:
    """A citizen waits at this kiosk or talks to a clerk through it."""
    return app["hub"].rooms.of_kiosk(kiosk_id) is not None


def send_action(app: web.Application, kiosk_id: int, action: str, *, force: bool) -> SentAction | None:
    """Send ``action`` to the kiosk; None when it is not connected."""
    if kiosk_id not in app["hub"].kiosks:
        return None
    entry = app["kiosk_actions"].add(kiosk_id, action, force)
    app["hub"].send_action(kiosk_id, f.KioskAction(type="kiosk.action", action_id=entry.action_id,
                                                   action=action, force=force))
    return entry
