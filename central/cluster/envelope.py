"""What travels through Valkey between an edge central and the leader: one envelope per WebSocket event.

An edge (a central that does not lead) accepts kiosks, consoles, guests and visitors from home like the
leader does, and relays each socket's frames to the leader's hub and the hub's frames back
(docs/decisions/0008-several-centrals.md). Envelopes go through pub/sub channels: ``UP`` to whichever
central leads, and ``down:<edge>`` to each edge. Pub/sub, not streams: nothing of a visit lands in a
stream that outlives the socket (0003), a frame costs one PUBLISH and no trimming, and an envelope lost
while a subscriber is away is harmless because both ends treat a lost subscription as the end of every
relayed socket (they reconnect and resume with their tokens, 0005).

Binary-safe and cheap to parse: one ASCII header line, then the payload as is::

    <epoch> <edge> <peer> <op>\\n<payload>

``epoch`` is the leader's term (central/cluster/lease.py): an envelope of another term is not acted on,
on either side, so a frame sent to an old leader never reaches a new one, nor the reverse.
"""
from __future__ import annotations

from dataclasses import dataclass

PREFIX = "amtsklingel:relay:"
UP = PREFIX + "up"  # edges -> the leader's hub


def down(edge: str) -> str:
    """The leader -> one edge."""
    return f"{PREFIX}down:{edge}"


def presence(edge: str) -> str:
    """A key each edge renews while it runs: the leader ends the sockets of an edge whose key ran out."""
    return f"{PREFIX}edge:{edge}"


# Edge -> leader
OPEN = "open"          # payload: JSON {"kind": ..., "identity": {...}} (central/live/admission.py)
TEXT = "text"          # payload: a text frame from the peer, UTF-8
BINARY = "binary"      # payload: a binary frame from the peer
PONG = "pong"          # the peer answered the ping the leader asked for
CLOSED = "closed"      # the socket ended (or was never opened)
# Leader -> edge
ADMITTED = "admitted"  # open the WebSocket; text frames for it follow
REFUSED = "refused"    # payload: JSON {"status", "text", "headers"}: answer the handshake with this
SEND = "send"          # payload: a text frame for the peer, UTF-8
CLOSE = "close"        # payload: the close code; send what is queued, then close
ABORT = "abort"        # drop the connection (the peer stopped reading)
PING = "ping"          # payload: seconds: ping the peer, answer PONG if it answers in time

UP_OPS = frozenset({OPEN, TEXT, BINARY, PONG, CLOSED})
DOWN_OPS = frozenset({ADMITTED, REFUSED, SEND, CLOSE, ABORT, PING})


@dataclass(frozen=True, slots=True)
class Envelope:
    epoch: int
    edge: str
    peer: str
    op: str
    payload: bytes = b""


def pack(epoch: int, edge: str, peer: str, op: str, payload: bytes | str = b"") -> bytes:
    if isinstance(payload, str):
        payload = payload.encode("utf-8", "surrogatepass")
    return f"{epoch} {edge} {peer} {op}\n".encode("ascii") + payload


def unpack(data: bytes) -> Envelope | None:
    """The envelope, or None for anything that is not one (logged by the caller, never acted on)."""
    head, newline, payload = data.partition(b"\n")
    parts = head.split(b" ")
    if not newline or len(parts) != 4 or not parts[0].isdigit():
        return None
    try:
        edge, peer, op = (part.decode("ascii") for part in parts[1:])
    except UnicodeDecodeError:
        return None
    return Envelope(int(parts[0]), edge, peer, op, payload)
