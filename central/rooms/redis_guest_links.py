"""Guest links written through to Redis/Valkey, so an unused one still opens its call after a change of leader.

The leading central keeps the book in memory (:class:`central.rooms.guest_links.GuestLinks`) and writes every
unused link to one hash, ``amtsklingel:guests:links``, the way it writes the waiting rooms
(central/rooms/fenced_hash.py: batched, fenced by the lease, expiring after the resume grace). A link leaves
the hash when it is claimed or revoked, or when its call is over. A standby taking over loads the hash, so
it lets in the guest of an unused link and refuses a used or revoked one, as the old leader would have.

Per link it writes what lets the guest in: the call (visit id), the clerk who invited, the role and the
label shown on the guest's tile, and the guest's peer id. The field is the SHA-256 of the link's secret,
never the secret: what Redis holds opens no call. So the new leader cannot show the clerk an unused link
again; the clerk's console keeps the one it shows (or the clerk revokes it and invites anew).

A guest who opened their link is written to a second hash, ``amtsklingel:guests:present``, under the SHA-256
of their rejoin key (central/live/guest_rejoin.py): the call, the clerk, role, label, peer id, the step they are
in and their order of admission. Their connection ends with the old leader; their page comes back to the new
one with the key and is the same guest again, in the same call. They leave the hash with their part in the call
or with the call, and the hash expires after the resume grace like the other.
"""
from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import TYPE_CHECKING

from central.rooms.fenced_hash import FencedHash
from central.rooms.guest_links import MAX_GUESTS_PER_CALL, Guest, GuestLinks

if TYPE_CHECKING:  # redis is needed only where redis_url is configured
    import redis.asyncio as aioredis

LINKS_KEY = "amtsklingel:guests:links"
GUESTS_KEY = "amtsklingel:guests:present"


class RedisGuestLinks(GuestLinks):
    """``expiry_s`` is the resume grace; ``lease`` and ``on_fenced`` as for
    :class:`central.rooms.redis_rooms.RedisRooms`. Call :meth:`load` before use and run :meth:`run` as a
    task while leading."""

    def __init__(self, client: aioredis.Redis, expiry_s: float, *,
                 lease: Callable[[], tuple[str, str]] | None = None, on_fenced: Callable[[], None] = lambda: None,
                 max_per_call: int = MAX_GUESTS_PER_CALL) -> None:
        super().__init__(max_per_call)
        self._hash = FencedHash(client, LINKS_KEY, expiry_s, self._encode, lambda: list(self._unused), lease=lease,
                                on_fenced=on_fenced, what="the guest links")
        self._present = FencedHash(client, GUESTS_KEY, expiry_s, self._encode_guest, lambda: list(self._keys),
                                   lease=lease, on_fenced=on_fenced, what="the guests in calls")

    def _link_added(self, guest: Guest) -> None:
        self._hash.mark(guest.digest)

    def _link_gone(self, digest: str) -> None:
        self._hash.mark(digest)

    def _key_changed(self, guest: Guest) -> None:
        self._present.mark(guest.key_digest)

    def _key_gone(self, digest: str) -> None:
        self._present.mark(digest)

    def _encode_guest(self, digest: str) -> str | None:
        guest = self._keys.get(digest)
        if guest is None:
            return None
        return json.dumps({"visit_id": guest.visit_id, "clerk_id": guest.clerk_id, "role": guest.role,
                           "label": guest.label, "peer": guest.peer, "state": guest.state,
                           "admitted": guest.admitted}, separators=(",", ":"))

    def _encode(self, digest: str) -> str | None:
        guest = self._unused.get(digest)
        if guest is None:
            return None
        return json.dumps({"visit_id": guest.visit_id, "clerk_id": guest.clerk_id, "role": guest.role,
                           "label": guest.label, "peer": guest.peer}, separators=(",", ":"))

    async def load(self) -> int:
        """Take every unused link and every guest Redis holds into the book (a standby taking over); returns
        how many."""
        stored, present = await self._hash.read(), await self._present.read()
        for digest, text in stored.items():
            d = json.loads(text)
            self.restore(Guest(visit_id=d["visit_id"], clerk_id=d["clerk_id"], role=d["role"], label=d["label"],
                               peer=d["peer"], secret=None, digest=_text(digest)))
        for digest, text in present.items():
            d = json.loads(text)
            self.restore(Guest(visit_id=d["visit_id"], clerk_id=d["clerk_id"], role=d["role"], label=d["label"],
                               peer=d["peer"], secret=None, state=d["state"], admitted=d["admitted"],
                               key_digest=_text(digest)))
        return len(stored) + len(present)

    async def flush(self, *, everything: bool = False) -> None:
        await self._hash.flush(everything=everything)
        await self._present.flush(everything=everything)

    async def run(self) -> None:
        """Write both hashes through until one of them is fenced (the other stops with it)."""
        writers = [asyncio.ensure_future(self._hash.run()), asyncio.ensure_future(self._present.run())]
        try:
            done, _ = await asyncio.wait(writers, return_when=asyncio.FIRST_COMPLETED)
            for writer in done:
                writer.result()  # an unexpected error of one writer is not lost with the other's cancel
        finally:
            for writer in writers:
                writer.cancel()
            await asyncio.gather(*writers, return_exceptions=True)


def _text(field: bytes | str) -> str:
    return field.decode() if isinstance(field, bytes) else field
