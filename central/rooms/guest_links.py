"""One-time links that bring a third person (interpreter, colleague) into one call, kept in memory only.

A link is a secret of 192 random bits. It opens exactly one guest connection: claiming it takes the
secret out of the book, so a second opening (reuse) finds nothing, whether the first guest is still
there or gone. A guest belongs to one call: the visit and the clerk who invited them. When that call
is over (hang-up, transfer, failed media), every guest of it is dropped with it; nothing of a guest
is written anywhere.
"""
from __future__ import annotations

import itertools
import secrets
from dataclasses import dataclass, field
from typing import Any

from protocol.errors import AmtsklingelError

# Mesh of two-party connections: with two guests a kiosk sends its picture to three browsers
# (docs/decisions/, three-way calls); more would exceed what a Pi's uplink and CPU were measured for.
MAX_GUESTS_PER_CALL = 2
LINK_PATH = "/guest#"

_admissions = itertools.count(1)


class GuestLimitReached(AmtsklingelError):
    """The call has as many guests (or open links) as allowed."""


@dataclass(eq=False)
class Guest:
    visit_id: str
    clerk_id: int
    role: str  # protocol.participants.GuestRole
    label: str
    peer: str = field(default_factory=lambda: "g-" + secrets.token_urlsafe(9))
    secret: str | None = field(default_factory=lambda: secrets.token_urlsafe(24))  # None once claimed
    state: str = "invited"  # protocol.participants.GuestState
    link: Any = None  # the guest's connection (central.live.link.Link) once the secret was claimed
    admitted: int = 0  # order of admission: among guests, the earlier one offers to the later

    @property
    def path(self) -> str | None:
        """The link's path while it can still be used."""
        return LINK_PATH + self.secret if self.secret is not None else None


class GuestLinks:
    def __init__(self, max_per_call: int = MAX_GUESTS_PER_CALL):
        self.max_per_call = max_per_call
        self._by_secret: dict[str, Guest] = {}
        self._by_visit: dict[str, dict[str, Guest]] = {}

    def create(self, visit_id: str, clerk_id: int, role: str, label: str) -> Guest:
        guests = self._by_visit.setdefault(visit_id, {})
        if len(guests) >= self.max_per_call:
            raise GuestLimitReached(f"at most {self.max_per_call} guests per call")
        guest = Guest(visit_id, clerk_id, role, label)
        guests[guest.peer] = guest
        self._by_secret[guest.secret] = guest
        return guest

    def claim(self, secret: str, link: Any) -> Guest | None:
        """The guest of an unused link, now bound to ``link``; None for an unknown, used or revoked one."""
        guest = self._by_secret.pop(secret, None)
        if guest is None:
            return None
        guest.secret, guest.link, guest.state = None, link, "joining"
        return guest

    def admit(self, guest: Guest) -> None:
        guest.state, guest.admitted = "in_call", next(_admissions)

    def get(self, visit_id: str, peer: str) -> Guest | None:
        return self._by_visit.get(visit_id, {}).get(peer)

    def of_visit(self, visit_id: str) -> list[Guest]:
        return list(self._by_visit.get(visit_id, {}).values())

    def in_call(self, visit_id: str) -> list[Guest]:
        return [g for g in self.of_visit(visit_id) if g.state == "in_call"]

    def remove(self, guest: Guest) -> None:
        """Forget the guest and its link (revoked, removed, left or lost)."""
        guest.state = "gone"
        if guest.secret is not None:
            self._by_secret.pop(guest.secret, None)
            guest.secret = None
        guests = self._by_visit.get(guest.visit_id, {})
        if guests.get(guest.peer) is guest:
            del guests[guest.peer]
        if not guests:
            self._by_visit.pop(guest.visit_id, None)

    def drop_call(self, visit_id: str) -> list[Guest]:
        """The call is over: every guest and link of it goes; returns the guests to tell."""
        guests = self.of_visit(visit_id)
        for guest in guests:
            self.remove(guest)
        return guests

    def __len__(self) -> int:
        return sum(len(g) for g in self._by_visit.values())
