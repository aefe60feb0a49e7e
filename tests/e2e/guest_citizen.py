"""A scripted kiosk that also takes guests into its call: on ``call.participant_joined`` (offer=true) it offers
to the guest with its own test pattern and tone, as the appliance does (appliance/controller/guests.py), and
counts what arrives from each guest. For central's and the browsers' side of calls with guests (the appliance
itself has its own three-way end-to-end test)."""
from __future__ import annotations

import asyncio
from collections import defaultdict

from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from appliance.call.peer import CallPeer
from appliance.hardware.fake.camera import TestPatternTrack
from appliance.hardware.fake.microphone import SyntheticMicrophoneTrack
from appliance.sim.kiosk import Received, SimulatedKiosk
from protocol import messages as m
from protocol import participants as p


class KioskWithGuests(SimulatedKiosk):
    def __post_init__(self) -> None:
        super().__post_init__()
        self.guest_peers: dict[str, CallPeer] = {}
        self.from_guests: dict[str, Received] = defaultdict(Received)

    async def _handle(self, message: m.Message) -> None:
        peer_id = getattr(message, "peer", None)
        if isinstance(message, p.ParticipantJoined) and message.offer and self.welcome is not None:
            await self._close_guest(message.peer)  # a second joined for the same guest starts afresh
            peer = CallPeer(self.welcome.ice_servers, [TestPatternTrack(320, 240), SyntheticMicrophoneTrack()],
                            on_remote_track=lambda track, g=message.peer: self._count(g, track))
            self.guest_peers[message.peer] = peer
            await self._link.send(m.RtcOffer(type="rtc.offer", visit_id=message.visit_id, peer=message.peer,
                                             sdp=await peer.offer()))
        elif isinstance(message, p.ParticipantLeft):
            await self._close_guest(message.peer)
        elif isinstance(message, m.RtcAnswer) and peer_id is not None:
            if (peer := self.guest_peers.get(peer_id)) is not None:
                await peer.accept_answer(message.sdp)
        elif isinstance(message, m.RtcCandidate) and peer_id is not None:
            if (peer := self.guest_peers.get(peer_id)) is not None:
                await peer.add_candidate(message.candidate)
        else:
            if isinstance(message, (m.VisitEnded, m.VisitTransferred, m.CallFailed)):
                for guest in list(self.guest_peers):
                    await self._close_guest(guest)
            await super()._handle(message)

    def _count(self, guest: str, track: MediaStreamTrack) -> None:
        async def count() -> None:
            try:
                while True:
                    await track.recv()
                    received = self.from_guests[guest]
                    if track.kind == "video":
                        received.video_frames += 1
                    else:
                        received.audio_frames += 1
            except MediaStreamError:
                pass
        asyncio.get_running_loop().create_task(count())

    async def _close_guest(self, guest: str) -> None:
        peer = self.guest_peers.pop(guest, None)
        if peer is not None:
            for sender in peer.pc.getSenders():
                if sender.track:
                    sender.track.stop()
            await peer.close()

    async def stop(self) -> None:
        for guest in list(self.guest_peers):
            await self._close_guest(guest)
        await super().stop()
