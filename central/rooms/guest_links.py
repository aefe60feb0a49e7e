"""One-time links that bring a third person (interpreter, colleague) into one call.

A link is a secret of 192 random bits. It opens exactly one guest connection: claiming it takes the
link out of the book, so a second opening (reuse) finds nothing, whether the first guest is still
there or gone. The book finds an unused link by the SHA-256 of its secret, so a copy of it (several
centrals keep one in Redis, central/rooms/redis_guest_links.py) opens nothing. A guest belongs to one
call: the visit and the clerk who invited them. When that call is over (hang-up, transfer, failed
media), every guest of it is dropped with it. Nothing of a guest is written to disk.

A guest who opened their link gets a rejoin key instead (192 random bits, found by its digest in the same
way): after a lost connection it brings the same guest back onto a new one, once, and a fresh key is issued.
"""
from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field
from typing import Any

from protocol.errors import AmtsklingelError

# Mesh of two-party connections: with two guests a kiosk sends its picture to three browsers
# (docs/decisions/, three-way calls); more would exceed what a Pi's uplink and CPU were measured for.
MAX_GUESTS_PER_CALL = 2
LINK_PATH = "/guest#"


class GuestLimitReached(AmtsklingelError):
    """The call has as many guests (or open links) as allowed."""


def link_digest(secret: str) -> str:
    """How the book knows an unused link: not by its secret."""
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(eq=False)
class Guest:
    visit_id: str
    clerk_id: int
    role: str  # protocol.participants.GuestRole
    label: str
    peer: str = field(default_factory=lambda: "g-" + secrets.token_urlsafe(9))
    # The link's secret, for the clerk to pass on. None once claimed, and on a central that took an unused
    # link over from another: that one knows only its digest, and still lets the guest in.
    secret: str | None = field(default_factory=lambda: secrets.token_urlsafe(24))
    digest: str | None = None  # link_digest(secret) while the link is unused, None once claimed or revoked
    state: str = "invited"  # protocol.participants.GuestState
    link: Any = None  # the guest's connection (central.live.link.Link) once the secret was claimed
    admitted: int = 0  # order of admission: among guests, the earlier one offers to the later
    # The key that brings this guest back after a lost connection, for the guest's page only (None on a central
    # that took the guest over: it knows only the digest); its digest, while the guest may come back.
    key: str | None = None
    key_digest: str | None = None
    # Who was away when the guest came back: their pair with the guest starts afresh when they are back too.
    restart_with: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        if self.secret is not None and self.digest is None:
            self.digest = link_digest(self.secret)

    @property
    def path(self) -> str | None:
        """The link's path while it can still be used (and this central knows its secret)."""
        return LINK_PATH + self.secret if self.secret is not None and self.digest is not None else None


class GuestLinks:
    """The book of guests and their links, in memory. :meth:`_link_added` and :meth:`_link_gone` tell a
    subclass which unused links changed (central/rooms/redis_guest_links.py writes them through)."""

    def __init__(self, max_per_call: int = MAX_GUESTS_PER_CALL):
        self.max_per_call = max_per_call
        self._unused: dict[str, Guest] = {}  # digest -> the guest of a link nobody has opened yet
        self._keys: dict[str, Guest] = {}  # digest of a rejoin key -> the guest who opened their link
        self._admissions = 0  # the last guest's order of admission (a takeover goes on from the old leader's)
        self._by_visit: dict[str, dict[str, Guest]] = {}

    def create(self, visit_id: str, clerk_id: int, role: str, label: str) -> Guest:
        guests = self._by_visit.setdefault(visit_id, {})
        if len(guests) >= self.max_per_call:
            raise GuestLimitReached(f"at most {self.max_per_call} guests per call")
        guest = Guest(visit_id, clerk_id, role, label)
        guests[guest.peer] = guest
        self._unused[guest.digest] = guest
        self._link_added(guest)
        return guest

    def restore(self, guest: Guest) -> None:
        """An unused link, or a guest who had opened theirs, another central knew (a takeover): in the book
        again, as it was; the guest comes back with their rejoin key."""
        guests = self._by_visit.setdefault(guest.visit_id, {})
        if guest.peer in guests:
            return
        if guest.digest is not None and guest.digest not in self._unused:
            self._unused[guest.digest] = guest
        elif guest.key_digest is not None and guest.key_digest not in self._keys:
            self._keys[guest.key_digest] = guest
        else:
            return
        guests[guest.peer] = guest
        self._admissions = max(self._admissions, guest.admitted)

    def claim(self, secret: str, link: Any) -> Guest | None:
        """The guest of an unused link, now bound to ``link``; None for an unknown, used or revoked one."""
        guest = self._unused.pop(link_digest(secret), None)
        if guest is None:
            return None
        self._link_gone(guest.digest)
        guest.secret = guest.digest = None
        guest.link, guest.state = link, "joining"
        self._new_key(guest)
        return guest

    def rejoin(self, key: str) -> Guest | None:
        """The guest of this rejoin key, with a new key (this one is used up); None for an unknown or used one."""
        guest = self._keys.get(link_digest(key))
        if guest is not None:
            self._new_key(guest)
        return guest

    def _new_key(self, guest: Guest) -> None:
        if guest.key_digest is not None:
            self._keys.pop(guest.key_digest, None)
            self._key_gone(guest.key_digest)
        guest.key = secrets.token_urlsafe(24)
        guest.key_digest = link_digest(guest.key)
        self._keys[guest.key_digest] = guest
        self._key_changed(guest)

    def admit(self, guest: Guest) -> None:
        self._admissions += 1
        guest.state, guest.admitted = "in_call", self._admissions
        self.changed(guest)

    def changed(self, guest: Guest) -> None:
        """The guest's state changed (joining, waiting, in the call): what a takeover needs to know of them."""
        if guest.key_digest is not None:
            self._key_changed(guest)

    def get(self, visit_id: str, peer: str) -> Guest | None:
        return self._by_visit.get(visit_id, {}).get(peer)

    def of_visit(self, visit_id: str) -> list[Guest]:
        return list(self._by_visit.get(visit_id, {}).values())

    def in_call(self, visit_id: str) -> list[Guest]:
        return [g for g in self.of_visit(visit_id) if g.state == "in_call"]

    def all(self) -> list[Guest]:
        return [guest for guests in self._by_visit.values() for guest in guests.values()]

    def remove(self, guest: Guest) -> None:
        """Forget the guest and its link (revoked, removed, left or lost)."""
        guest.state = "gone"
        if guest.digest is not None:
            self._unused.pop(guest.digest, None)
            self._link_gone(guest.digest)
            guest.secret = guest.digest = None
        if guest.key_digest is not None:
            self._keys.pop(guest.key_digest, None)
            self._key_gone(guest.key_digest)
            guest.key = guest.key_digest = None
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

    def _link_added(self, guest: Guest) -> None:
        """A new unused link (kept in memory only here)."""

    def _link_gone(self, digest: str) -> None:
        """An unused link was claimed or revoked (kept in memory only here)."""

    def _key_changed(self, guest: Guest) -> None:
        """A guest's rejoin key is new, or the guest's state changed (kept in memory only here)."""

    def _key_gone(self, digest: str) -> None:
        """A rejoin key was used or the guest is gone (kept in memory only here)."""
