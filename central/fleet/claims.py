"""An admin claims a waiting unit by its code: the unit becomes a kiosk and gets its token.

Guessing codes is slowed down per admin and per client address: after ``MAX_WRONG`` wrong codes
within ``WINDOW_S`` every further attempt waits, the right code too, until the oldest of them is
old enough. With 2^40 codes, 200 units waiting and 960 guesses a day per admin session, that
leaves a guesser a chance of about one in 6 million a day.

A unit whose serial number is a kiosk already is enrolled again as that kiosk: a new token, its
location and settings kept; the admin confirms that first (``NeedsConfirmation``).
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass

from central.fleet.enrolment import Enrolments, PendingUnit, normalise_code
from central.storage.audit import kiosk_target
from central.storage.database import Database, Kiosk
from central.storage.kiosk_units import KioskUnit
from protocol.errors import AmtsklingelError

log = logging.getLogger(__name__)

MAX_WRONG = 10
WINDOW_S = 15 * 60.0


class ClaimThrottle:
    """Wrong codes per key (an admin, an address) within the last ``window_s``; in this process,
    like the pending units themselves."""

    def __init__(self, max_wrong: int = MAX_WRONG, window_s: float = WINDOW_S, *,
                 clock: Callable[[], float] = time.monotonic):
        self.max_wrong = max_wrong
        self.window_s = window_s
        self.clock = clock
        self._wrong: dict[Hashable, deque[float]] = {}

    def wait_s(self, keys: Iterable[Hashable]) -> float:
        """Seconds until the next attempt of these keys is looked at; 0.0 if now."""
        now = self.clock()
        wait = 0.0
        for key in keys:
            times = self._wrong.get(key)  # the latest max_wrong wrong codes, oldest first
            if times is not None and len(times) == self.max_wrong:
                wait = max(wait, times[0] + self.window_s - now)
        return wait

    def wrong(self, keys: Iterable[Hashable]) -> None:
        now = self.clock()
        for key in keys:
            self._wrong.setdefault(key, deque(maxlen=self.max_wrong)).append(now)
        if len(self._wrong) > 1000:  # keys whose wrong codes are all old count for nothing
            for key in [k for k, times in self._wrong.items() if times[-1] <= now - self.window_s]:
                del self._wrong[key]


@dataclass(frozen=True)
class Lookup:
    """What an admin's code found: the unit, or nothing, or (``wait_s`` > 0) not looked at."""

    code: str | None
    unit: PendingUnit | None
    wait_s: float = 0.0


@dataclass(frozen=True)
class Known:
    """The waiting unit is this kiosk already (by its serial number)."""

    kiosk: Kiosk
    unit: KioskUnit


@dataclass(frozen=True)
class Enrolled:
    kiosk_id: int
    location: str
    again: bool        # an existing kiosk enrolled again
    delivered: bool    # False: the unit left before its token was sent; its next code enrols it again


class NeedsConfirmation(AmtsklingelError):  # noqa: N818 - an outcome the page shows, not an error
    """The unit is already a kiosk: the admin must confirm enrolling it again."""

    def __init__(self, known: Known):
        super().__init__(f"kiosk {known.kiosk.id}")
        self.known = known


class Claims:
    """The claim side of enrolment (``app["claims"]``)."""

    def __init__(self, enrolments: Enrolments, throttle: ClaimThrottle | None = None):
        self.enrolments = enrolments
        self.throttle = throttle or ClaimThrottle()
        self._lock = asyncio.Lock()  # one claim at a time: a serial is looked up, then recorded

    def look_up(self, typed: str, staff_id: int, address: str) -> Lookup:
        """The unit showing the code ``typed``, counting it against the admin and address if wrong."""
        keys = (("staff", staff_id), ("address", address))
        if (wait := self.throttle.wait_s(keys)) > 0:
            return Lookup(None, None, wait)
        code = normalise_code(typed)
        unit = self.enrolments.find(code) if code else None
        if unit is None:
            self.throttle.wrong(keys)
        return Lookup(code, unit)

    @staticmethod
    async def known(db: Database, unit: PendingUnit) -> Known | None:
        found = await db.kiosk_units.by_serial(unit.serial or "")
        if found is None:
            return None
        kiosk = next((k for k in await db.kiosks() if k.id == found.kiosk_id), None)
        return Known(kiosk, found) if kiosk is not None else None

    async def claim(self, db: Database, code: str, *, staff_id: int, location: str, departments: list[str] | None,
                    confirmed_kiosk: int | None, on_new_token: Callable[[int], None]) -> Enrolled | None:
        """Enrol the unit showing ``code``; None if it no longer does (claimed, expired or gone).

        ``departments`` None: every department. ``on_new_token(kiosk_id)`` is called when an
        existing kiosk's token changed, to end its live connection. Raises NeedsConfirmation when
        the unit is a kiosk already and ``confirmed_kiosk`` is not that kiosk's id.
        """
        async with self._lock:
            unit = self.enrolments.find(code)
            if unit is None:
                return None
            known = await self.known(db, unit)
            if known is not None and confirmed_kiosk != known.kiosk.id:
                raise NeedsConfirmation(known)
            unit = self.enrolments.take(code)  # no await since find(): still the same unit
            if unit is None:
                return None
            try:
                if known is not None:
                    kiosk_id, location = known.kiosk.id, known.kiosk.location
                    token = await db.new_kiosk_token(kiosk_id)
                    await db.forget_token_reuse(kiosk_id)
                    on_new_token(kiosk_id)
                else:
                    kiosk_id, token = await db.create_kiosk(location)
                    await _apply_settings(db, kiosk_id, location, departments)
                await db.kiosk_units.record(kiosk_id, unit.serial or "", unit.model)
                await _audit(db, staff_id, kiosk_id, unit, again=known is not None)
            except BaseException:
                self.enrolments.give_back(unit)
                raise
        delivered = self.enrolments.deliver(unit, token, location)
        log.info("kiosk %d %s by code (unit %s)", kiosk_id, "enrolled again" if known else "enrolled", unit.serial)
        if not delivered:
            log.warning("kiosk %d: the unit left before its token was sent; it is enrolled again with its next code",
                        kiosk_id)
        return Enrolled(kiosk_id, location, known is not None, delivered)


async def _apply_settings(db: Database, kiosk_id: int, location: str, departments: list[str] | None) -> None:
    """The new kiosk's location and departments, through the kiosk settings (None: every department)."""
    values: dict[str, object] = {"location": location}
    if departments is not None:
        values["departments"] = departments
    await db.kiosk_settings.update(kiosk_id, **values)


async def _audit(db: Database, staff_id: int, kiosk_id: int, unit: PendingUnit, *, again: bool) -> None:
    await db.audit.record(staff_id, "kiosk.reenrol" if again else "kiosk.enrol", kiosk_target(kiosk_id),
                          f"serial {unit.serial}")
