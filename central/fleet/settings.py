"""Remote settings and actions on their way to the kiosks.

The settings live in the database (central/storage/kiosk_settings.py); this module sends the
effective settings to the connected kiosks after a change, and kiosk actions (self-test,
restart, reboot) with the check that no citizen is waiting at the kiosk or talking to a clerk.
"""
from __future__ import annotations

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
