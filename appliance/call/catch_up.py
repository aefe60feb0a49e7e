"""A kiosk that cannot keep up with the call's incoming packets drops stale media instead of falling ever
further behind, and always reads the clerk's answers to its ICE consent checks.

The clerk's browser sends audio and video at its own pace. aiortc's ICE agent (aioice) reads each of the
call's sockets through asyncio, which takes one datagram per turn of the event loop, and aiortc then puts
every media packet through SRTP and the receiver's buffers. A kiosk whose CPU cannot keep up (an emulated
test guest; a Pi 4 at full load) leaves the rest in the kernel's socket buffer: packets wait there for
seconds, and once the buffer is full the kernel drops whatever arrives, the clerk's answers to the ICE
consent checks among them. The kiosk then reads those answers late or never, and its consent
(appliance/call/consent.py) ends a call whose clerk is still there.

:func:`use_catch_up` reads each of a call's sockets to the end whenever it is readable and asks the kernel
when each packet arrived (``SO_TIMESTAMPNS``). A media packet (RTP) that waited longer than ``STALE_S`` is
dropped before any work is spent on it: audio that late would only delay the conversation (and the
speaker's buffer holds what it needs), and a late picture is replaced by the next one. Everything else is
always handed on: STUN (ICE checks, consent and their answers), DTLS and RTCP. So at most ``STALE_S`` of
media waits at any time, and the clerk's answers are read within that. The journal says so once, when
the kiosk starts to drop, and gives the call's totals when it ends (:meth:`CatchUp.summary`).

aiortc has no setting for it: each socket's asyncio reader is replaced (the loop's ``_add_reader``, as
asyncio registers it itself) once aiortc gathered its candidates, as consent.py replaces aioice's consent
checks. Sockets of a TURN server over UDP are read the same way (the media inside its ChannelData frames);
over TCP they keep asyncio's reading. If that ever stops fitting the installed asyncio or aioice, the
call keeps the usual reading and the log says so.
"""
from __future__ import annotations

import logging
import socket
import struct
import sys
import time

log = logging.getLogger(__name__)

STALE_S = 0.5        # media that waited longer in the socket is dropped (a conversation's delay budget)
NEAR_S = 0.2         # a longest wait from which the call's end tells it (the kiosk is near its limit)
BATCH = 256          # datagrams read per turn of the event loop at most (~3 s of a call's packets)
DATAGRAM_MAX = 65536
TIMESPEC = struct.Struct("@ll")  # struct timespec {time_t; long} of the kernel's receive time
# Python names neither before 3.13 (or at all): Linux's value on x86, Arm and RISC-V (asm-generic/socket.h),
# where SCM_TIMESTAMPNS is the same number.
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35 if sys.platform == "linux" else None)
ANCILLARY = socket.CMSG_SPACE(TIMESPEC.size) if SO_TIMESTAMPNS is not None else 0
TURN_INNER = "_TurnTransport__inner_protocol"  # where aioice's TurnTransport keeps its UDP client


def is_media(data: bytes) -> bool:
    """An RTP packet (RFC 7983's demultiplexing by first byte), also inside a TURN ChannelData frame;
    RTCP (RFC 5761: payload type 192-223), STUN, DTLS and anything unknown are not."""
    if len(data) >= 6 and 64 <= data[0] <= 79:  # TURN ChannelData: 4 bytes of header, then the packet
        data = data[4:6]
    return len(data) >= 2 and 128 <= data[0] <= 191 and not 192 <= data[1] <= 223


class CatchUp:
    """The reading of one call's sockets; counts for the journal and tests."""

    def __init__(self, stale_s: float = STALE_S) -> None:
        self.stale_s = stale_s
        self.read = 0            # datagrams read
        self.media = 0           # of them media packets
        self.dropped = 0         # media packets dropped as stale
        self.longest_wait_s = 0.0
        self.sockets = 0         # sockets read this way

    def install(self, transport, protocol) -> bool:
        """Read ``transport``'s socket here and hand what is kept to ``protocol.datagram_received``."""
        loop, sock = getattr(transport, "_loop", None), getattr(transport, "_sock", None)
        add_reader = getattr(loop, "_add_reader", None)
        if not (isinstance(sock, socket.socket) and callable(add_reader) and hasattr(transport, "_conn_lost")
                and sock.type == socket.SOCK_DGRAM):
            return False
        if SO_TIMESTAMPNS is not None:
            try:
                sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
            except OSError:
                pass  # read to the end all the same, without dropping by age
        add_reader(sock.fileno(), self._read_ready, transport, sock, protocol)
        self.sockets += 1
        return True

    def _read_ready(self, transport, sock: socket.socket, protocol) -> None:
        for _ in range(BATCH):
            if transport._conn_lost:
                return
            try:
                data, ancillary, _flags, addr = sock.recvmsg(DATAGRAM_MAX, ANCILLARY)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # e.g. ICMP port unreachable, as asyncio passes it on
                protocol.error_received(exc)
                return
            self.read += 1
            if is_media(data):
                self.media += 1
                waited = _waited_s(ancillary)
                if waited > self.longest_wait_s:
                    self.longest_wait_s = waited
                if waited > self.stale_s:
                    self._drop(waited)
                    continue
            protocol.datagram_received(data, addr)

    def _drop(self, waited: float) -> None:
        self.dropped += 1
        if self.dropped == 1:
            log.warning("call: the kiosk cannot keep up with the call's incoming packets (one waited %.1f s); "
                        "it drops received media older than %.1f s and keeps the call's ICE, DTLS and RTCP",
                        waited, self.stale_s)

    def summary(self) -> str | None:
        """The call's totals for the journal if the kiosk fell behind, or came near to it (None otherwise)."""
        if self.dropped:
            return (f"call: {self.dropped} of {self.media} received media packets were dropped as older than "
                    f"{self.stale_s:.1f} s (the longest wait {self.longest_wait_s:.1f} s): the kiosk could not "
                    "keep up")
        if self.longest_wait_s >= NEAR_S:
            return (f"call: received media waited up to {self.longest_wait_s:.2f} s to be read ({self.media} "
                    f"packets, none dropped; media older than {self.stale_s:.1f} s would be)")
        return None


def _waited_s(ancillary) -> float:
    """How long ago the kernel received the datagram (0 without its timestamp)."""
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(data) >= TIMESPEC.size:
            seconds, nanoseconds = TIMESPEC.unpack_from(data)
            return time.time() - (seconds + nanoseconds / 1e9)
    return 0.0


def use_catch_up(pc, stale_s: float = STALE_S) -> CatchUp:
    """Read the sockets of ``pc`` (an aiortc RTCPeerConnection whose candidates are gathered, i.e. after
    setLocalDescription) as :class:`CatchUp` does. Returns it (reading no socket if aioice is built otherwise)."""
    catch_up = CatchUp(stale_s)
    gatherers = {id(g): g for g in (t.sender.transport.transport.iceGatherer for t in pc.getTransceivers())}
    unfit = 0
    for gatherer in gatherers.values():
        for protocol in list(getattr(getattr(gatherer, "_connection", None), "_protocols", ())):
            transport = getattr(protocol, "transport", None)
            inner = getattr(transport, TURN_INNER, None)
            if inner is not None:  # relayed: the TURN client's own socket carries the media
                protocol, transport = inner, getattr(inner, "transport", None)
                if getattr(getattr(transport, "_sock", None), "type", None) == socket.SOCK_STREAM:
                    continue  # TURN over TCP: a stream, read as asyncio does
            if transport is None or not catch_up.install(transport, protocol):
                unfit += 1
    if unfit and not catch_up.sockets:
        log.warning("this aiortc reads its sockets otherwise than expected; a kiosk that falls behind keeps "
                    "every stale packet of the call and may lose the clerk's ICE consent answers")
    return catch_up
