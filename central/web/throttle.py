"""Slowing down password guessing without locking the rightful user out.

Three counters see every login attempt, each with a growing wait once it has
seen a few failures (1 s, 2 s, 4 s, … at most MAX_WAIT_S):

- the account from this address: typos of the rightful user, or someone guessing
  one account from one place; it is the one that waits soonest;
- this address, whatever the account: guessing across many names from one place
  (generous, since a town hall's staff may share one address);
- the account from everywhere: many addresses guessing one account together.
  Only such an attack makes the rightful user wait, and never longer than
  MAX_WAIT_S at a time; an administrator can lift it at once.

An attempt is counted before its password is checked and taken back when it
was right, so a burst of parallel guesses gets no more tries than a sequence.
The counters live in the database (all central processes see them) under keyed
hashes that change daily (central.storage.logins), and are forgotten after an
hour without a failure.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from central.storage.logins import Counter, LoginAttempts

MAX_WAIT_S = 300
FORGET_AFTER_S = 3600


@dataclass(frozen=True)
class Rule:
    prefix: str
    free: int  # attempts before the first wait

    def wait_after(self, attempts: int) -> float:
        if attempts < self.free:
            return 0.0
        return float(min(2 ** min(attempts - self.free, 16), MAX_WAIT_S))


PAIR = Rule("p", 3)
ADDRESS = Rule("i", 10)
ACCOUNT = Rule("a", 20)


@dataclass(frozen=True)
class Attempt:
    """One login attempt: ``wait_s`` > 0 means refused unchecked, come back then."""

    wait_s: float
    counters: tuple[Counter, ...]
    pair_key: str


class LoginThrottle:
    def __init__(self, store: LoginAttempts, clock: Callable[[], float] = time.time):
        self.store = store
        self.clock = clock
        self._secret: tuple[str, bytes] | None = None

    async def _key(self) -> bytes:
        day = dt.datetime.fromtimestamp(self.clock(), dt.UTC).date().isoformat()
        if self._secret is None or self._secret[0] != day:
            self._secret = (day, bytes.fromhex(await self.store.secret(day)))
        return self._secret[1]

    @staticmethod
    def _hash(key: bytes, kind: str, value: str) -> str:
        return hmac.new(key, f"{kind}\0{value}".encode(), hashlib.sha256).hexdigest()[:32]

    async def account_hash(self, username: str) -> str:
        return self._hash(await self._key(), "account", username)

    async def begin(self, username: str, address: str) -> Attempt:
        """Count an attempt of ``username`` from ``address``, unless one of its counters still waits."""
        key = await self._key()
        account, place = self._hash(key, "account", username), self._hash(key, "address", address)
        counters = (Counter(f"{PAIR.prefix}:{account}:{place}", account, PAIR.wait_after),
                    Counter(f"{ADDRESS.prefix}:{place}", None, ADDRESS.wait_after),
                    Counter(f"{ACCOUNT.prefix}:{account}", account, ACCOUNT.wait_after))
        wait = await self.store.begin(counters, self.clock(), FORGET_AFTER_S)
        return Attempt(wait, counters, counters[0].key)

    async def succeeded(self, attempt: Attempt) -> None:
        """The password was right: this attempt no longer counts, nor do earlier typos from here."""
        await self.store.uncount([k.key for k in attempt.counters if k.key != attempt.pair_key],
                                 [attempt.pair_key], self.clock())

    async def not_checked(self, attempt: Attempt) -> None:
        """The password could not be checked (server busy): take the attempt back."""
        await self.store.uncount([k.key for k in attempt.counters], [], self.clock())

    async def unlock(self, username: str) -> int:
        """Lift every wait of this account (from everywhere); returns how many counters went."""
        return await self.store.unlock(await self.account_hash(username))

    async def waiting(self, usernames: Iterable[str]) -> dict[str, float]:
        """Of these accounts, those that wait now (from some address), with until when (epoch seconds)."""
        key = await self._key()
        waits = await self.store.waiting_accounts(self.clock())
        found = {name: waits.get(self._hash(key, "account", name)) for name in usernames}
        return {name: until for name, until in found.items() if until is not None}
