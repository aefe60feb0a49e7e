"""City IT's actions on the rollout (the admin page calls these): start, open rings, pause, resume, stop.

Each is stored at once, told to the connected kiosks through the hub, and written to the audit log.
Messages of :class:`RolloutError` are catalogue strings, shown to the admin translated.
"""
from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Iterable
from typing import Protocol

from aiohttp import web

from central.i18n import N_
from central.updates.rings import WINDOWS, PauseReason, Rollout
from protocol.errors import AmtsklingelError

MAX_CANARY_SHOWN = 20  # kiosk ids named in the audit entry


class RolloutError(AmtsklingelError, ValueError):
    """The action cannot be done now; the message says what to do instead."""


class BundleInfo(Protocol):
    """What a rollout needs of a bundle (central/updates/library.py has the real one)."""

    id: int
    version: str
    size_bytes: int
    sha256: str
    path: str  # where kiosks fetch it (the download endpoint)


IN_ROLLOUT = "a rollout of it is running; stop that on the updates page first"


def removal_guard(app: web.Application):  # noqa: ANN201 - a RemovalGuard of central/updates/library.py
    """Keeps the bundle of the live rollout from being removed (kiosks may be fetching it)."""
    async def guard(bundle_id: int) -> str | None:
        rollout = app["hub"].updates.rollout
        return IN_ROLLOUT if rollout is not None and rollout.bundle_id == bundle_id else None
    return guard


def stored_removal_guard(db):  # noqa: ANN001, ANN201 - a Database; a RemovalGuard
    """The same for the command line, which has no running hub: the live rollout as stored."""
    async def guard(bundle_id: int) -> str | None:
        rollout = await db.updates.live_rollout()
        return IN_ROLLOUT if rollout is not None and rollout.bundle_id == bundle_id else None
    return guard


# -- what each action does to a rollout (also used by ``python -m central rollout``) --------------------
def new_rollout(bundle: BundleInfo, canary: Iterable[int], window: str, max_kbit_s: int | None, by: str,
                now: float) -> Rollout:
    if window not in WINDOWS:
        raise RolloutError(N_("Choose when kiosks may install: outside office hours, or as soon as they are idle."))
    canary = frozenset(canary)
    if not canary:
        raise RolloutError(N_("Pick at least one canary kiosk: the update goes to them first."))
    return Rollout(id=0, bundle_id=bundle.id, version=bundle.version, size_bytes=bundle.size_bytes,
                   sha256=bundle.sha256, path=bundle.path, canary=canary, window=window, max_kbit_s=max_kbit_s,
                   started_at=now, started_by=by)


def widened(rollout: Rollout, percent: int | None) -> Rollout:
    """The rollout with its percentage ring opened to ``percent`` (None: all kiosks)."""
    if rollout.state != "active":
        raise RolloutError(N_("Resume the rollout before opening the next ring."))
    if rollout.ring == "all":
        raise RolloutError(N_("Every kiosk already has the update."))
    if percent is None:
        return dataclasses.replace(rollout, ring="all")
    if not 1 <= percent <= 100 or (rollout.ring == "percent" and percent <= rollout.percent):
        raise RolloutError(N_("Give a percentage larger than the one open now, up to 100."))
    return dataclasses.replace(rollout, ring="percent", percent=percent)


def paused(rollout: Rollout) -> Rollout:
    if rollout.state != "active":
        raise RolloutError(N_("The rollout is paused already."))
    return dataclasses.replace(rollout, state="paused", pause=None)


def resumed(rollout: Rollout) -> Rollout:
    if rollout.state != "paused":
        raise RolloutError(N_("The rollout is not paused."))
    return dataclasses.replace(rollout, state="active", pause=None)


def stopped(rollout: Rollout, now: float) -> Rollout:
    return dataclasses.replace(rollout, state="stopped", ended_at=now)


def pause_detail(reason: PauseReason | None) -> str:
    """For the audit entry of a resume: what had paused it."""
    if reason is None:
        return ""
    return f"paused by kiosk {reason.kiosk_id}: {reason.state} {reason.fault or ''} {reason.check or ''}".strip()


# -- the actions on a running central -------------------------------------------------------------------
def _lock(app: web.Application) -> asyncio.Lock:
    return app["rollout_lock"]


def _current(app: web.Application, rollout_id: int) -> Rollout:
    rollout = app["hub"].updates.rollout
    if rollout is None or rollout.id != rollout_id:
        raise RolloutError(N_("This rollout has ended or was replaced meanwhile. Look at the page again."))
    return rollout


async def _audit(app: web.Application, staff_id: int, action: str, rollout: Rollout, detail: str) -> None:
    await app["db"].audit.record(staff_id, action, f"bundle:{rollout.bundle_id}",
                                 f"rollout {rollout.id}, version {rollout.version}; {detail}".rstrip("; "))


async def start(app: web.Application, staff, bundle: BundleInfo, canary: Iterable[int], window: str,  # noqa: ANN001
                max_kbit_s: int | None) -> Rollout:
    """A new rollout of ``bundle`` to the ``canary`` kiosks; a live one is stopped and its bundle withdrawn."""
    hub, now = app["hub"], time.time()
    rollout = new_rollout(bundle, canary, window, max_kbit_s, staff.username, now)
    async with _lock(app):
        rollout = await app["db"].updates.start(rollout, stopped_at=now)
        replaced = hub.updates.rollout
        hub.withdraw_update()  # the bundle of the one replaced, if any
        hub.updates.set_rollout(rollout)
        hub.offer_updates()
    shown = sorted(rollout.canary)
    kiosks = ",".join(map(str, shown[:MAX_CANARY_SHOWN])) + ("…" if len(shown) > MAX_CANARY_SHOWN else "")
    await _audit(app, staff.id, "update.start", rollout,
                 f"canary kiosks {kiosks}; window {window}; max {max_kbit_s or '-'} kbit/s"
                 + (f"; replaces rollout {replaced.id}" if replaced is not None else ""))
    return rollout


async def open_percent(app: web.Application, staff, rollout_id: int, percent: int) -> Rollout:  # noqa: ANN001
    """Open (or widen) the percentage ring: this share of all kiosks, on top of the canaries."""
    async with _lock(app):
        rollout = await _apply(app, widened(_current(app, rollout_id), percent))
        app["hub"].offer_updates(only_new=True)
    await _audit(app, staff.id, "update.percent", rollout, f"{percent} %")
    return rollout


async def open_all(app: web.Application, staff, rollout_id: int) -> Rollout:  # noqa: ANN001
    async with _lock(app):
        rollout = await _apply(app, widened(_current(app, rollout_id), None))
        app["hub"].offer_updates(only_new=True)
    await _audit(app, staff.id, "update.all", rollout, "")
    return rollout


async def pause(app: web.Application, staff, rollout_id: int) -> Rollout:  # noqa: ANN001
    """Stop offering; kiosks not done yet are told to leave the bundle (one installing finishes, no reboot)."""
    async with _lock(app):
        rollout = await _apply(app, paused(_current(app, rollout_id)))
        app["hub"].withdraw_update()
    await _audit(app, staff.id, "update.pause", rollout, "")
    return rollout


async def resume(app: web.Application, staff, rollout_id: int) -> Rollout:  # noqa: ANN001
    """Go on: the reached kiosks that are not done are offered the bundle again (not those that rolled back)."""
    async with _lock(app):
        reason = _current(app, rollout_id).pause
        rollout = await _apply(app, resumed(_current(app, rollout_id)))
        app["hub"].offer_updates()
    await _audit(app, staff.id, "update.resume", rollout, pause_detail(reason))
    return rollout


async def stop(app: web.Application, staff, rollout_id: int) -> Rollout:  # noqa: ANN001
    async with _lock(app):
        rollout = stopped(_current(app, rollout_id), time.time())
        await app["db"].updates.save(rollout)
        app["hub"].withdraw_update()  # while the book still knows whom the rollout reached
        app["hub"].updates.set_rollout(rollout)
    await _audit(app, staff.id, "update.stop", rollout, "")
    return rollout


async def _apply(app: web.Application, rollout: Rollout) -> Rollout:
    await app["db"].updates.save(rollout)
    app["hub"].updates.set_rollout(rollout)
    return rollout
