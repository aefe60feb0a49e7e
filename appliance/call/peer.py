"""The kiosk's WebRTC peer (aiortc): sends camera and microphone, receives the clerk.

The kiosk makes the offer, so it decides codecs (H.264 passthrough on a Pi 4).
ICE servers are exactly those central hands over — never aiortc's public default.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from aiortc import RTCConfiguration, RTCIceCandidate, RTCIceServer, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.sdp import candidate_from_sdp

from protocol import messages as m

log = logging.getLogger(__name__)


def rtc_configuration(servers: list[m.IceServer]) -> RTCConfiguration:
    # An empty list is deliberate: aiortc falls back to a public STUN server when
    # iceServers is None, which would leak the kiosk's address to a third party.
    return RTCConfiguration(iceServers=[RTCIceServer(urls=s.urls, username=s.username, credential=s.credential)
                                        for s in servers])


class CallPeer:
    """One call's peer connection. ``on_remote_track`` gets the clerk's audio and video."""

    def __init__(self, ice_servers: list[m.IceServer], tracks: list[MediaStreamTrack],
                 on_remote_track: Callable[[MediaStreamTrack], None] | None = None,
                 video_codecs: list | None = None, on_state: Callable[[str], None] | None = None):
        """``video_codecs`` pins the video codec, e.g. H.264 for a camera whose packets pass through.
        ``on_state`` hears "connected" and "failed" as the peer connection reaches them."""
        self.pc = RTCPeerConnection(rtc_configuration(ice_servers))
        self._on_state = on_state
        self.pc.on("connectionstatechange", self._state_changed)
        self._tracks = tracks
        for track in tracks:
            transceiver = self.pc.addTransceiver(track, direction="sendrecv")
            if track.kind == "video" and video_codecs:
                transceiver.setCodecPreferences(video_codecs)
        self._on_remote_track = on_remote_track or self._drain
        self.pc.on("track", self._on_remote_track)
        self._drains: set[asyncio.Task] = set()

    async def offer(self) -> str:
        """Create the offer; aiortc gathers all candidates first, so the SDP carries them."""
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return self.pc.localDescription.sdp

    async def accept_answer(self, sdp: str) -> None:
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))

    async def add_candidate(self, candidate: m.Candidate) -> None:
        if not candidate.candidate:
            return  # end of candidates: aiortc needs no signal for it
        parsed: RTCIceCandidate = candidate_from_sdp(candidate.candidate.removeprefix("candidate:"))
        parsed.sdpMid, parsed.sdpMLineIndex = candidate.sdpMid, candidate.sdpMLineIndex
        await self.pc.addIceCandidate(parsed)

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
