"""Scripted kiosk: joins a waiting room when told to and answers a clerk's pick-up with video and audio."""
from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

import aiohttp
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from appliance.call.peer import CallPeer
from appliance.call.signaling import CentralLink, CentralUnreachable
from appliance.hardware.fake.camera import TestPatternTrack
from appliance.hardware.fake.microphone import SyntheticMicrophoneTrack
from protocol import messages as m

log = logging.getLogger(__name__)


@dataclass
class Received:
    """What arrived from the clerk during the current call (counts only; nothing is kept)."""

    video_frames: int = 0
    audio_frames: int = 0


@dataclass
class SimulatedKiosk:
    central_url: str
    token: str
    width: int = 640
    height: int = 480
    state: str = "idle"           # idle | waiting | in_call
    visit: m.VisitQueued | None = None
    resume_token: str | None = None  # the latest central sent (it replaces the one in ``visit``)
    last_event: m.Message | None = None
    received: Received = field(default_factory=Received)
    events: asyncio.Queue = field(default_factory=asyncio.Queue)

    def __post_init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None
        self._link: CentralLink | None = None
        self._peer: CallPeer | None = None
        self._runner: asyncio.Task | None = None
        self.welcome: m.Welcome | None = None

    async def start(self) -> m.Welcome:
        self._session = aiohttp.ClientSession()
        self._link = CentralLink(self.central_url, self.token, self._session)
        self.welcome = await self._link.connect_with_backoff(attempts=10)
        self._runner = asyncio.get_running_loop().create_task(self._run())
        return self.welcome

    async def request(self, department: str, language: str = "de") -> None:
        await self._link.send(m.VisitRequest(type="visit.request", department=department, language=language))

    async def cancel(self) -> None:
        if self.visit:
            await self._link.send(m.VisitCancel(type="visit.cancel", visit_id=self.visit.visit_id))

    async def hang_up(self) -> None:
        if self.visit:
            await self._link.send(m.VisitHangup(type="visit.hangup", visit_id=self.visit.visit_id))

    async def next_event(self, kind: str, timeout: float = 10.0) -> m.Message:
        async with asyncio.timeout(timeout):
            while True:
                event = await self.events.get()
                if event.type == kind:
                    return event

    async def stop(self) -> None:
        if self._runner:
            self._runner.cancel()
        await self._end_call()
        if self._link:
            await self._link.close()
        if self._session:
            await self._session.close()

    # -- message loop -------------------------------------------------------------
    async def _run(self) -> None:
        try:
            async for message in self._link.messages():
                self.last_event = message
                await self._handle(message)
                self.events.put_nowait(message)
        except CentralUnreachable:
            log.warning("lost connection to central")

    async def _handle(self, message: m.Message) -> None:
        if getattr(message, "resume_token", None):
            self.resume_token = message.resume_token
        if isinstance(message, m.VisitQueued):
            self.visit, self.state = message, "waiting"
        elif isinstance(message, m.CallStart):
            await self._end_call()  # a repeated call.start (clerk reconnected) renegotiates from scratch
            self.state = "in_call"
            self.received = Received()
            tracks = [TestPatternTrack(self.width, self.height), SyntheticMicrophoneTrack()]
            visit_id = message.visit_id
            # Central gives up on a call whose kiosk does not report its media connected.
            self._peer = CallPeer(message.ice_servers, tracks, on_remote_track=self._consume,
                                  on_state=lambda state: self._report(visit_id, state))
            await self._link.send(m.RtcOffer(type="rtc.offer", visit_id=message.visit_id,
                                             sdp=await self._peer.offer()))
        elif isinstance(message, m.RtcAnswer) and self._peer:
            await self._peer.accept_answer(message.sdp)
        elif isinstance(message, m.RtcCandidate) and self._peer:
            await self._peer.add_candidate(message.candidate)
        elif isinstance(message, (m.VisitTransferred, m.CallFailed)):
            await self._end_call()
            self.state = "waiting"
        elif isinstance(message, m.VisitEnded):
            await self._end_call()
            self.visit, self.state = None, "idle"

    def _report(self, visit_id: str, state: str) -> None:
        async def send() -> None:
            try:
                await self._link.send(m.RtcState(type="rtc.state", visit_id=visit_id, state=state))
            except CentralUnreachable:
                log.warning("lost connection to central")
        asyncio.get_running_loop().create_task(send())

    def _consume(self, track: MediaStreamTrack) -> None:
        async def count() -> None:
            try:
                while True:
                    await track.recv()
                    if track.kind == "video":
                        self.received.video_frames += 1
                    else:
                        self.received.audio_frames += 1
            except MediaStreamError:
                pass
        asyncio.get_running_loop().create_task(count())

    async def _end_call(self) -> None:
        peer, self._peer = self._peer, None
        if peer is not None:
            for sender in peer.pc.getSenders():
                if sender.track:
                    sender.track.stop()
            await peer.close()
