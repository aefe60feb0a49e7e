"""Resume tokens: a visit's place, signed by central and held only by its kiosk.

A token lets central put a visit back where it stood after central itself restarted
with empty memory, without central writing anything about visits to disk
(docs/decisions/0009-resume-tokens.md). Layout: ``base64url(signature).base64url(payload)``,
signature = HMAC-SHA256 over the encoded payload with a key from the database's
settings, shared by every central instance. The signature comes first so that the
fixed-length part leads (protocol.messages.ResumeToken). The payload is JSON.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from central.rooms.visit import Visit, VisitState


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class Claims:
    """What a valid token says about its visit."""

    visit_id: str
    kiosk_id: int | None     # None: a visit from home
    department: str
    language: str
    arrived_at: float        # unix seconds: the place in the queue
    state: VisitState
    clerk_id: int | None     # in a call: with whom
    picked_up_at: float | None
    instance: str            # the central process that issued it
    expires_at: float
    slot_start: float | None = None  # a booked visit's slot start: its priority survives a restart
    booking: str | None = None       # and its booking's code


class ResumeTokens:
    """Issues and checks tokens. ``instance`` is new for every central process: a token of
    this very process whose visit is gone means the visit ended; one of an earlier process
    means central restarted and the visit may be restored."""

    def __init__(self, key: str, lifetime_s: float, *, clock: Callable[[], float] = time.time):
        self._key = key.encode()
        self.lifetime_s = lifetime_s
        self.instance = secrets.token_urlsafe(6)
        self._clock = clock

    def issue(self, visit: Visit) -> str:
        payload = {"v": visit.id, "k": visit.kiosk_id, "d": visit.department, "l": visit.language,
                   "a": visit.arrived_at, "s": visit.state.value, "c": visit.clerk_id, "p": visit.picked_up_at,
                   "i": self.instance, "e": round(self._clock() + self.lifetime_s)}
        if visit.slot_start is not None:
            payload["b"] = visit.slot_start
        if visit.booking is not None:
            payload["bc"] = visit.booking
        body = _b64(json.dumps(payload, separators=(",", ":")).encode())
        return f"{self._sign(body)}.{body}"

    def verify(self, token: str) -> Claims | None:
        """The claims of a genuine, unexpired token; None for anything else."""
        signature, dot, body = token.partition(".")
        if not dot or not hmac.compare_digest(signature, self._sign(body)):
            return None
        try:
            p = json.loads(_unb64(body))
            claims = Claims(visit_id=str(p["v"]), kiosk_id=None if p["k"] is None else int(p["k"]), department=str(p["d"]),
                            language=str(p["l"]), arrived_at=float(p["a"]), state=VisitState(p["s"]),
                            clerk_id=None if p["c"] is None else int(p["c"]),
                            picked_up_at=None if p["p"] is None else float(p["p"]),
                            instance=str(p["i"]), expires_at=float(p["e"]),
                            slot_start=None if p.get("b") is None else float(p["b"]),
                            booking=None if p.get("bc") is None else str(p["bc"]))
        except (ValueError, KeyError, TypeError, binascii.Error):
            return None  # signed by us, so this is a bug, not an attack; refuse all the same
        if claims.expires_at < self._clock():
            return None
        return claims

    def _sign(self, body: str) -> str:
        return _b64(hmac.new(self._key, body.encode("ascii"), hashlib.sha256).digest())
