"""ICE consent (RFC 7675) that a busy kiosk keeps: a check answered late still counts.

While a call runs, the kiosk's ICE agent asks the clerk's side every 5 s (randomised) whether it
still wants the media: a STUN check. RFC 7675 ends the media when no check sent in the last 30 s
has been answered. aioice (aiortc's ICE agent) is stricter: it sends each check once, waits 0.5 s,
and ends the connection after six checks in a row without an answer in those 0.5 s. On a kiosk
whose CPU falls behind (an SD card that stalls, the encoder at full load, an emulated test guest)
the answer arrives in time but is read late: the call's socket also carries the clerk's audio and
video, asyncio reads one datagram per turn of the event loop, and after a stall the check's 0.5 s
timer fires before the answer behind the queued media packets is reached. Six such checks and
aioice closes a connection whose other side answered every one: the kiosk reports the call failed
and central ends it (`ice_failed`) about half a minute after the kiosk fell behind.

:func:`use_patient_consent` gives a call's ICE connections RFC 7675's rule instead
(:class:`PatientConsent`): each check is retransmitted as STUN does (after 0.5 s, doubling) for as
long as its answer could still count, and consent lasts 30 s from the sending of the last check
that was answered, however late the answer came. A clerk who is really gone (browser closed,
network cut) still ends the call 30-36 s after their last answer, as with aioice; and the kiosk
then says so (``on_expired``: the call failed). With aioice's own checks aiortc only closed the
peer connection, which the kiosk did not take for a failure: it stayed in a call without media
until the clerk's browser gave up too and central ended the call.

aiortc has no setting for it; the connection's ``query_consent`` (the coroutine aioice starts once
connected) is replaced on each call's connections before they connect, as audio_buffer.py replaces
the receiver's buffer. If that ever stops fitting the installed aioice, the call keeps aioice's own
checks and the log says so.
"""
from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)

INTERVAL_S = 5.0   # RFC 7675 5.1: a check every 5 s, randomised between 0.8 and 1.2 times that
WINDOW_S = 30.0    # RFC 7675 5.1: consent expires 30 s after the last answered check was sent
STUN_RTO_S = 0.5   # aioice's first retransmission timeout (stun.RETRY_RTO); it doubles per try


@dataclass(frozen=True)
class ConsentTiming:
    """How often to check and how long an answered check keeps consent (RFC 7675's values by default;
    tests shorten both)."""
    interval_s: float = INTERVAL_S
    window_s: float = WINDOW_S

    @property
    def retransmissions(self) -> int:
        """Retransmissions that keep a check open for the whole window: 0.5 + 1 + 2 + ... >= window."""
        count, open_s = 0, STUN_RTO_S
        while open_s < self.window_s:
            count += 1
            open_s += STUN_RTO_S * 2 ** count
        return count


RFC_7675 = ConsentTiming()


class PatientConsent:
    """RFC 7675's consent checks for one aioice connection (its nominated pairs), in place of aioice's."""

    def __init__(self, connection, timing: ConsentTiming = RFC_7675,
                 on_expired: Callable[[], None] | None = None) -> None:
        self._connection = connection
        self.timing = timing
        self._on_expired = on_expired
        self.checks = 0          # sent, for tests and the log
        self.answered = 0
        self.answered_late = 0   # answered after aioice's 0.5 s: aioice alone would have counted them lost
        self.slowest_s = 0.0
        self.expired = False
        self._fresh_until = 0.0
        self._pending: set[asyncio.Task] = set()

    async def run(self) -> None:
        """Runs from the moment the connection is up until it closes (aioice cancels it) or consent expires."""
        loop = asyncio.get_running_loop()
        self._fresh_until = loop.time() + self.timing.window_s  # the connectivity checks just succeeded
        try:
            while True:
                await asyncio.sleep(self.timing.interval_s * (0.8 + 0.4 * random.random()))
                if loop.time() > self._fresh_until:
                    break
                for pair in list(self._connection._nominated.values()):
                    self._check(pair, loop.time())
        finally:
            for task in self._pending:
                task.cancel()
        self.expired = True
        log.warning("the other side of the call answered none of the ICE consent checks of the last %.0f s "
                    "(%d sent, %d answered, %d of them late): the call's media stops", self.timing.window_s,
                    self.checks, self.answered, self.answered_late)
        self._connection._query_consent_task = None  # close() would otherwise cancel this very task
        await self._connection.close()
        if self._on_expired is not None:
            self._on_expired()

    def _check(self, pair, sent: float) -> None:
        from aioice import stun

        connection = self._connection
        request = connection.build_request(pair, nominate=False)

        async def ask() -> None:
            try:
                await pair.protocol.request(request, pair.remote_addr,
                                            integrity_key=connection.remote_password.encode("utf8"),
                                            retransmissions=self.timing.retransmissions)
            except stun.TransactionError:
                return  # refused or never answered: consent is not renewed by this check
            self._answered(sent, asyncio.get_running_loop().time() - sent)

        self.checks += 1
        task = asyncio.get_running_loop().create_task(ask())
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    def _answered(self, sent: float, took_s: float) -> None:
        self.answered += 1
        self._fresh_until = max(self._fresh_until, sent + self.timing.window_s)
        self.slowest_s = max(self.slowest_s, took_s)
        if took_s > STUN_RTO_S:
            self.answered_late += 1
            if self.answered_late == 1:
                log.info("call: an ICE consent check was answered after %.1f s; it still counts (RFC 7675)", took_s)


def use_patient_consent(pc, timing: ConsentTiming = RFC_7675,
                        on_expired: Callable[[], None] | None = None) -> list[PatientConsent]:
    """Give the ICE connections of ``pc`` (an aiortc RTCPeerConnection) :class:`PatientConsent`; call it
    before the remote description is set (aiortc connects then). ``on_expired`` is called once consent
    expired and the connection is closed. Returns them (empty if aioice's internals differ: the call
    then keeps aioice's own checks)."""
    installed = []
    gatherers = {id(g): g for g in (t.sender.transport.transport.iceGatherer for t in pc.getTransceivers())}
    for gatherer in gatherers.values():
        connection = getattr(gatherer, "_connection", None)
        if not all(hasattr(connection, name) for name in
                   ("query_consent", "_nominated", "build_request", "remote_password", "close")):
            log.warning("this aioice does not fit the kiosk's consent checks; the call keeps aioice's own, "
                        "which a busy kiosk can lose")
            return installed
        consent = PatientConsent(connection, timing, on_expired)
        connection.query_consent = consent.run  # what aioice's connect() starts once connected
        installed.append(consent)
    return installed
