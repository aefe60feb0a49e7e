"""The ICE servers central hands out: time-limited TURN credentials, fresh for each peer.

coturn's REST-API scheme (``use-auth-secret`` with ``static-auth-secret``): central and
coturn share one secret; central makes credentials that coturn checks without asking
anyone::

    username   = "<unix time it expires>:<who>"     e.g. "1765000000:kiosk-12"
    credential = base64(HMAC-SHA1(secret, username))

So no long-lived TURN password ever leaves central's configuration: a kiosk, a clerk's
browser, a visitor from home or a guest holds credentials that stop working after
``lifetime_s``. A call needs working credentials only while it sets up and keeps its
relay, so every call.start and call.assigned carries fresh ones: a kiosk that stayed
connected for days gets new ones with its next visit.

``who`` ends up in coturn's log: it names a role and an account or kiosk number
(``kiosk-12``, ``staff-3``, ``home``, ``guest``), never a person.

The configured static list (``ice_servers``) is handed out as it is, before the TURN
entry: for STUN, or for a site whose TURN server has long-lived users of its own.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from protocol import messages as m

# coturn splits the user name at its rest-api-separator, ":" unless configured otherwise.
SEPARATOR = ":"
TURN_SCHEMES = ("turn:", "turns:")


class TurnSecret:
    """The secret shared with coturn; its repr and str never show it (a logged config stays harmless)."""

    __slots__ = ("_key",)

    def __init__(self, value: str):
        self._key = value.encode("utf-8")

    def sign(self, username: str) -> str:
        """coturn's password for ``username``: base64(HMAC-SHA1(secret, username))."""
        return base64.b64encode(hmac.new(self._key, username.encode("utf-8"), hashlib.sha1).digest()).decode("ascii")

    def __repr__(self) -> str:
        return "TurnSecret(<hidden>)"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TurnSecret) and hmac.compare_digest(self._key, other._key)

    def __hash__(self) -> int:
        return hash(TurnSecret)  # all alike: the key must not leak through a hash either


@dataclass(frozen=True)
class TurnRest:
    """coturn with a shared secret: its URLs, the secret, and how long credentials hold."""

    urls: tuple[str, ...]
    secret: TurnSecret
    lifetime_s: float

    def credentials(self, who: str, now: float) -> m.IceServer:
        expires = int(now + self.lifetime_s)
        username = f"{expires}{SEPARATOR}{who}"
        return m.IceServer(urls=list(self.urls), username=username, credential=self.secret.sign(username))


@dataclass
class IceServers:
    """What one peer gets as ``ice_servers``: the static list, then fresh TURN credentials if configured."""

    static: Sequence[m.IceServer] = ()
    turn: TurnRest | None = None
    clock: Callable[[], float] = time.time

    def for_peer(self, who: str) -> list[m.IceServer]:
        servers = list(self.static)
        if self.turn is not None:
            servers.append(self.turn.credentials(who, self.clock()))
        return servers

    @property
    def has_turn(self) -> bool:
        """Whether a peer gets any TURN server: a relay-only kiosk can connect calls only then."""
        return self.turn is not None or any(url.startswith(TURN_SCHEMES) for s in self.static for url in s.urls)

    @property
    def every_url(self) -> list[m.IceServer]:
        """Every STUN/TURN URL without credentials, for the candidate filter (which TURN servers exist)."""
        servers = [m.IceServer(urls=s.urls) for s in self.static]
        if self.turn is not None:
            servers.append(m.IceServer(urls=list(self.turn.urls)))
        return servers


def kiosk(kiosk_id: int) -> str:
    return f"kiosk-{kiosk_id}"


def staff(staff_id: int) -> str:
    return f"staff-{staff_id}"


HOME = "home"
GUEST = "guest"
