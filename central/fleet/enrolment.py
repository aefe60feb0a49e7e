"""Units waiting to be enrolled: their one-time codes, and handing a claimed unit its token.

A unit without a token holds a connection on ``/ws/enrol`` (central/fleet/enrol_socket.py) and is
known here from its ``enrol.hello`` until an admin claims the code it shows, it goes away, or it
has waited too long. The code is the only proof an admin has that a unit stands in front of
them, so it is short-lived (``CODE_TTL_S``; the unit is sent a fresh one when it runs out), used
once, and guessing it is slowed down on the admin's side (central/fleet/claims.py).

Pending units live in this central process only: with several central processes, ``/ws/enrol``
and the admin's claim must reach the same one (docs/protocol.md, "Enrolling a unit by code").
"""
from __future__ import annotations

import asyncio
import logging
import re
import secrets
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from central.live.link import Link
from protocol import fleet as f
from protocol.codec import encode
from protocol.errors import AmtsklingelError

log = logging.getLogger(__name__)

# Read off a screen and typed by hand: no 0/O and no 1/I, which people mix up. 32 signs, 8 places:
# 2^40 codes, against at most MAX_PENDING live ones and a handful of guesses a minute per admin.
ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
CODE_LENGTH = 8
CLAIM_PATH = "/admin/kiosks/enrol"


@dataclass(frozen=True)
class Limits:
    code_ttl_s: float = 600.0           # a code works for 10 minutes, then the unit shows a fresh one
    pending_timeout_s: float = 1800.0   # a unit nobody claims for 30 minutes is sent away (it reconnects)
    hello_timeout_s: float = 10.0       # a connection that does not say enrol.hello by then is closed
    max_pending: int = 200              # connections on /ws/enrol, all together
    max_per_address: int = 5            # ... from one client address (a town hall installing a few units)
    sweep_every_s: float = 1.0          # how often codes and waits are checked against the clock


class EnrolmentRefused(AmtsklingelError):
    """A unit may not wait for enrolment now; ``status`` and ``retry_after_s`` go into the HTTP answer."""

    def __init__(self, status: int, retry_after_s: int, text: str):
        super().__init__(text)
        self.status = status
        self.retry_after_s = retry_after_s
        self.text = text


def new_code() -> str:
    raw = "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))
    return f"{raw[:4]}-{raw[4:]}"


_SEPARATORS = re.compile(r"[\s\-–—_.]+")


def normalise_code(text: str) -> str | None:
    """What an admin typed as the code in its one form (``K7MP-4QX9``), or None if it cannot be one.

    Case, spaces and dashes do not matter (``k7mp 4qx9``, ``K7MP4QX9``).
    """
    raw = _SEPARATORS.sub("", text or "").upper()
    if len(raw) != CODE_LENGTH or any(ch not in ALPHABET for ch in raw):
        return None
    return f"{raw[:4]}-{raw[4:]}"


@dataclass(eq=False)
class PendingUnit:
    """One connection on /ws/enrol. ``serial`` is None until its hello."""

    address: str
    connected_at: float
    claim_base: str = ""                # central as the unit reached it, for the QR code's link
    link: Link | None = None
    serial: str | None = None
    model: str = ""
    version: str = ""
    code: str | None = None
    code_expires_at: float = 0.0
    claimed: bool = False               # taken by an admin's claim: no fresh codes any more
    farewell: tuple[int, str] = field(default=(1000, ""))  # the close code and reason it gets

    def send(self, message) -> None:  # noqa: ANN001 - a protocol message
        if self.link is not None:
            self.link.send(encode(message))

    def close(self, code: int, reason: str) -> None:
        self.farewell = (code, reason)
        if self.link is not None:
            self.link.close()


class Enrolments:
    """The pending units of this process (``app["enrolments"]``)."""

    def __init__(self, limits: Limits | None = None, *, clock: Callable[[], float] = time.monotonic):
        self.limits = limits or Limits()
        self.clock = clock
        self._units: set[PendingUnit] = set()
        self._by_code: dict[str, PendingUnit] = {}
        self._per_address: Counter[str] = Counter()

    def __len__(self) -> int:
        return len(self._units)

    # -- the unit's side -------------------------------------------------------------------
    def admit(self, address: str, claim_base: str) -> PendingUnit:
        """Count a new connection from ``address``, or refuse it (before the WebSocket is accepted)."""
        if len(self._units) >= self.limits.max_pending:
            raise EnrolmentRefused(503, 60, f"central has {self.limits.max_pending} units waiting for enrolment "
                                            "already; try again in a minute, or ask IT to claim the waiting ones")
        if self._per_address[address] >= self.limits.max_per_address:
            raise EnrolmentRefused(429, 60, f"{self.limits.max_per_address} units from this network are waiting "
                                            "for enrolment already; claim their codes in central's Kiosks page "
                                            "(or unplug some), then this one is let in")
        unit = PendingUnit(address=address, connected_at=self.clock(), claim_base=claim_base.rstrip("/"))
        self._units.add(unit)
        self._per_address[address] += 1
        return unit

    def release(self, unit: PendingUnit) -> None:
        """The connection ended, for whatever reason: its code no longer works."""
        if unit not in self._units:
            return
        self._units.discard(unit)
        self._per_address[unit.address] -= 1
        if self._per_address[unit.address] <= 0:
            del self._per_address[unit.address]
        self._drop_code(unit)

    def hello(self, unit: PendingUnit, hello: f.EnrolHello) -> None:
        """The unit said who it is: give it its first code."""
        unit.serial, unit.model, unit.version = hello.serial, hello.model, hello.version
        self._give_code(unit)

    def _give_code(self, unit: PendingUnit) -> None:
        self._drop_code(unit)
        code = new_code()
        while code in self._by_code:  # two live codes alike: one in ~10^9 at the cap, but never twice
            code = new_code()
        unit.code, unit.code_expires_at = code, self.clock() + self.limits.code_ttl_s
        self._by_code[code] = unit
        unit.send(f.EnrolCodeOffer(type="enrol.code", code=code, expires_in_s=max(1, round(self.limits.code_ttl_s)),
                                   claim_url=claim_url(unit.claim_base, code)))

    def _drop_code(self, unit: PendingUnit) -> None:
        if unit.code is not None and self._by_code.get(unit.code) is unit:
            del self._by_code[unit.code]
        unit.code = None

    # -- the admin's side ------------------------------------------------------------------
    def find(self, code: str) -> PendingUnit | None:
        """The unit showing ``code`` (normalised) right now, if any; the code stays valid."""
        unit = self._by_code.get(code)
        if unit is None or unit.claimed or self.clock() >= unit.code_expires_at or unit.link is None \
                or unit.link.closed:
            return None
        return unit

    def take(self, code: str) -> PendingUnit | None:
        """Claim the unit showing ``code``: from now on the code never works again.

        Nothing awaits between the look-up and the marking, so two admins claiming one code at
        the same moment cannot both get it.
        """
        unit = self.find(code)
        if unit is not None:
            unit.claimed = True
            self._drop_code(unit)
        return unit

    def give_back(self, unit: PendingUnit) -> None:
        """A claim could not be finished (central's database failed): the unit shows a fresh code."""
        unit.claimed = False
        if unit in self._units and unit.link is not None and not unit.link.closed:
            self._give_code(unit)

    @staticmethod
    def deliver(unit: PendingUnit, token: str, location: str) -> bool:
        """Send the claimed unit its token and close. False if its connection is gone already."""
        if unit.link is None or unit.link.closed:
            return False
        unit.send(f.EnrolDone(type="enrol.done", token=token, location=location[:120]))
        unit.close(1000, "enrolled")
        return True

    # -- time ------------------------------------------------------------------------------
    def sweep(self) -> None:
        """Fresh codes for expired ones; units that waited too long, or never said hello, are closed."""
        now = self.clock()
        for unit in list(self._units):
            if unit.claimed or unit.link is None or unit.link.closed:
                continue
            if unit.serial is None:
                if now - unit.connected_at >= self.limits.hello_timeout_s:
                    unit.close(1008, f"send enrol.hello within {self.limits.hello_timeout_s:g} s of connecting")
            elif now - unit.connected_at >= self.limits.pending_timeout_s:
                self._drop_code(unit)
                unit.close(1000, f"not claimed within {self.limits.pending_timeout_s / 60:g} minutes; "
                                 "connect again for a new code")
            elif now >= unit.code_expires_at:
                self._give_code(unit)

    async def keep_sweeping(self) -> None:
        while True:
            await asyncio.sleep(self.limits.sweep_every_s)
            try:
                self.sweep()
            except Exception:  # one bad unit must not stop every other unit's codes
                log.exception("checking the enrolment codes failed")


def claim_url(base: str, code: str) -> str:
    return f"{base}{CLAIM_PATH}?{urllib.parse.urlencode({'code': code})}"
