"""Central's side of the candidate rule: what it lets through between a kiosk and a console.

The rule itself is :mod:`protocol.candidates`; here it gets central's settings
(``ice_networks`` and the addresses of the configured TURN servers, whose names are
resolved at start and refreshed now and then) and is applied to the signaling
messages central relays, in both directions:

- ``rtc.candidate``: a refused candidate is not passed on at all (the sender is
  not told: its other candidates may well work, and ICE copes with fewer);
- ``rtc.offer`` / ``rtc.answer``: refused ``a=candidate`` lines are cut out of the SDP.
"""
from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from collections.abc import Iterable

from protocol import messages as m
from protocol.candidates import DEFAULT_NETWORKS, CandidatePolicy, ip_literal, parse_networks, turn_hosts

log = logging.getLogger(__name__)

REFRESH_S = 600.0  # a TURN server's address changes rarely; a changed one is picked up within minutes


class CandidateFilter:
    def __init__(self, networks: Iterable[str] = DEFAULT_NETWORKS, ice_servers: Iterable[m.IceServer] = ()):
        self._networks = parse_networks(networks)
        self.turn_hosts = turn_hosts(url for server in ice_servers for url in server.urls)
        literal = {a for a in (ip_literal(h) for h in self.turn_hosts) if a is not None}
        self.policy = CandidatePolicy(self._networks, frozenset(literal))
        self.dropped = 0  # candidates refused since start, for the log and tests; no addresses kept

    @property
    def names_to_resolve(self) -> list[str]:
        return [h for h in self.turn_hosts if ip_literal(h) is None]

    async def resolve_turn_hosts(self) -> None:
        """Look up the TURN servers' names; on failure keep what was known (and say so in the log)."""
        loop = asyncio.get_running_loop()
        addresses = set(self.policy.relay_addresses)
        for host in self.names_to_resolve:
            try:
                infos = await loop.getaddrinfo(host, None, type=socket.SOCK_DGRAM)
            except OSError as exc:
                log.warning("cannot resolve the TURN server %s (%s); relay candidates through it are dropped "
                            "until it resolves", host, exc.strerror or exc)
                continue
            addresses.update(ipaddress.ip_address(info[4][0].split("%", 1)[0]) for info in infos)
        self.policy = CandidatePolicy(self._networks, frozenset(addresses))

    async def keep_resolving(self) -> None:
        while True:
            await self.resolve_turn_hosts()
            await asyncio.sleep(REFRESH_S)

    def apply(self, msg: m.Message) -> m.Message | None:
        """The message as it may be passed on, or None when nothing of it may."""
        if isinstance(msg, m.RtcCandidate):
            if self.policy.allows_trickled(msg.candidate.candidate):
                return msg
            self._count(1)
            return None
        if isinstance(msg, (m.RtcOffer, m.RtcAnswer)):
            sdp = self.policy.filter_sdp(msg.sdp)
            if sdp != msg.sdp:
                self._count(msg.sdp.count("a=candidate:") - sdp.count("a=candidate:"))
                return msg.model_copy(update={"sdp": sdp})
        return msg

    def _count(self, dropped: int) -> None:
        self.dropped += dropped
        if dropped:
            log.info("dropped %d ICE candidate(s) naming addresses outside ice_networks and the TURN servers",
                     dropped)
