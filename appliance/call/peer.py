"""The kiosk's WebRTC peer (aiortc): sends camera and microphone, receives the clerk.

The kiosk makes the offer, so it decides codecs (H.264 passthrough on a Pi 4).
ICE servers are exactly those central hands over — never aiortc's public default.
What the clerk's side names as candidates (trickled, or in the answer's SDP) is
checked against the candidate rule (protocol/candidates.py) before aiortc sees it,
so a candidate cannot make the kiosk send packets into, say, a metadata service.
"""
from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable

from aiortc import RTCConfiguration, RTCIceCandidate, RTCIceServer, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.sdp import candidate_from_sdp

from protocol import messages as m
from protocol.candidates import DEFAULT_NETWORKS, CandidatePolicy, ip_literal, turn_hosts

log = logging.getLogger(__name__)


RESOLVE_TIMEOUT_S = 3.0


async def candidate_policy(networks: tuple[str, ...], ice_servers: list[m.IceServer]) -> CandidatePolicy:
    """The rule for one call: the configured networks, and the TURN servers' addresses for relay candidates."""
    loop = asyncio.get_running_loop()
    addresses: set[str] = set()
    for host in turn_hosts(url for server in ice_servers for url in server.urls):
        if ip_literal(host) is not None:
            addresses.add(host)
            continue
        try:
            async with asyncio.timeout(RESOLVE_TIMEOUT_S):
                infos = await loop.getaddrinfo(host, None, type=socket.SOCK_DGRAM)
        except (OSError, TimeoutError):
            log.warning("cannot resolve the TURN server %s; relay candidates through it are dropped", host)
            continue
        addresses.update(info[4][0].split("%", 1)[0] for info in infos)
    return CandidatePolicy.from_config(networks, addresses)


def rtc_configuration(servers: list[m.IceServer]) -> RTCConfiguration:
    # An empty list is deliberate: aiortc falls back to a public STUN server when
    # iceServers is None, which would leak the kiosk's address to a third party.
    return RTCConfiguration(iceServers=[RTCIceServer(urls=s.urls, username=s.username, credential=s.credential)
                                        for s in servers])


class CallPeer:
    """One call's peer connection. ``on_remote_track`` gets the clerk's audio and video."""

    def __init__(self, ice_servers: list[m.IceServer], tracks: list[MediaStreamTrack],
                 on_remote_track: Callable[[MediaStreamTrack], None] | None = None,
                 video_codecs: list | None = None, on_state: Callable[[str], None] | None = None,
                 ice_networks: tuple[str, ...] = DEFAULT_NETWORKS):
        """``video_codecs`` pins the video codec, e.g. H.264 for a camera whose packets pass through.
        ``on_state`` hears "connected" and "failed" as the peer connection reaches them.
        ``ice_networks``: where the clerk's candidates may point (with central's TURN servers)."""
        self.pc = RTCPeerConnection(rtc_configuration(ice_servers))
        self._ice_servers, self._ice_networks = ice_servers, ice_networks
        self._policy: CandidatePolicy | None = None
        self.dropped_candidates = 0  # a count for tests and the log; never the addresses
        self._on_state = on_state
        self.pc.on("connectionstatechange", self._state_changed)
        self._tracks = tracks
        for track in tracks:
            transceiver = self.pc.addTransceiver(track, direction="sendrecv")
            if track.kind == "video" and video_codecs:
                transceiver.setCodecPreferences(video_codecs)
        # A device that failed at call start sends nothing, but the clerk is still seen and heard.
        for kind in ("video", "audio"):
            if not any(track.kind == kind for track in tracks):
                self.pc.addTransceiver(kind, direction="recvonly")
        self._on_remote_track = on_remote_track or self._drain
        self.pc.on("track", self._on_remote_track)
        self._drains: set[asyncio.Task] = set()

    async def offer(self) -> str:
        """Create the offer; aiortc gathers all candidates first, so the SDP carries them."""
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return self.pc.localDescription.sdp

    async def accept_answer(self, sdp: str) -> None:
        policy = await self._candidate_policy()
        allowed = policy.filter_sdp(sdp)
        self._dropped(sdp.count("a=candidate:") - allowed.count("a=candidate:"))
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=allowed, type="answer"))

    async def add_candidate(self, candidate: m.Candidate) -> None:
        if not candidate.candidate:
            return  # end of candidates: aiortc needs no signal for it
        if not (await self._candidate_policy()).allows(candidate.candidate):
            self._dropped(1)
            return
        parsed: RTCIceCandidate = candidate_from_sdp(candidate.candidate.removeprefix("candidate:"))
        parsed.sdpMid, parsed.sdpMLineIndex = candidate.sdpMid, candidate.sdpMLineIndex
        await self.pc.addIceCandidate(parsed)

    async def _candidate_policy(self) -> CandidatePolicy:
        if self._policy is None:
            self._policy = await candidate_policy(self._ice_networks, self._ice_servers)
        return self._policy

    def _dropped(self, count: int) -> None:
        if count:
            self.dropped_candidates += count
            log.info("dropped %d ICE candidate(s) of the clerk naming addresses outside ice_networks and "
                     "the TURN servers", count)

    def _state_changed(self) -> None:
        if self._on_state is not None and self.pc.connectionState in ("connected", "failed"):
            self._on_state(self.pc.connectionState)

    def _drain(self, track: MediaStreamTrack) -> None:
        """Consume a remote track nobody displays, so aiortc's receive buffers do not fill."""
        async def run() -> None:
            try:
                while True:
                    await track.recv()
            except MediaStreamError:
                pass
        task = asyncio.get_running_loop().create_task(run())
        self._drains.add(task)
        task.add_done_callback(self._drains.discard)

    async def close(self) -> None:
        for track in self._tracks:
            track.stop()  # the camera stops capturing: its light goes off with the call
        await self.pc.close()
        for task in list(self._drains):
            task.cancel()
