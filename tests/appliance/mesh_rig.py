"""A kiosk's call with a clerk and guests, all real aiortc peers over loopback (no central in between).

The kiosk side is the appliance's own: :class:`MeshCall` with :class:`CallPeer`s, the fake camera (H.264
passthrough like a Pi 4, or frames) and a tone for the microphone. Each remote party is a plain
RTCPeerConnection sending a test pattern and a tone of its own pitch, and keeping what it receives.
"""
from __future__ import annotations

import asyncio
from collections import defaultdict

from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamTrack

from appliance.call.mesh import MeshCall
from appliance.call.peer import CallPeer, offered_video_codecs
from appliance.call.receiver_tap import DECODER_QUEUE, receiver_for
from appliance.hardware.fake.backend import FakeCamera
from appliance.hardware.fake.camera import TestPatternTrack, read_clock
from appliance.hardware.fake.microphone import SyntheticMicrophoneTrack
from protocol.fleet import DEFAULT_CALL_UPLOAD_KBIT_S

NETWORKS = ("127.0.0.0/8",)


class Remote:
    """The clerk's or a guest's browser, played by aiortc: sends a picture and a tone, keeps what arrives."""

    def __init__(self, name: str, pitch: float, video_codecs=None) -> None:
        self.name = name
        self.pc = RTCPeerConnection()
        self.tracks: dict[str, asyncio.Future] = {kind: asyncio.get_running_loop().create_future()
                                                  for kind in ("audio", "video")}
        self.pc.on("track", lambda track: self.tracks[track.kind].done() or self.tracks[track.kind].set_result(track))
        self.sent = [TestPatternTrack(320, 240, fps=15), SyntheticMicrophoneTrack(frequency=pitch)]
        for track in self.sent:
            transceiver = self.pc.addTransceiver(track, direction="sendrecv")
            if track.kind == "video" and video_codecs:
                transceiver.setCodecPreferences(video_codecs)

    async def answer(self, offer: str) -> str:
        await self.pc.setRemoteDescription(RTCSessionDescription(offer, "offer"))
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        return self.pc.localDescription.sdp

    async def pictures(self, count: int, seconds: float = 20) -> list[int | None]:
        """The clocks read off the next ``count`` decoded pictures from the kiosk."""
        async with asyncio.timeout(seconds):
            track = await self.tracks["video"]
            return [read_clock(await track.recv()) for _ in range(count)]

    async def picture_kbit_s(self, seconds: float) -> float:
        """The kiosk's picture as it arrives here over the next ``seconds``: kbit/s of reassembled frames
        (what the receiver hands its decoder, which still decodes every one of them)."""
        async with asyncio.timeout(20):
            track = await self.tracks["video"]
        q = getattr(receiver_for(self.pc, track), DECODER_QUEUE)
        if "put" not in vars(q):  # count once, then hand on as before
            original, self.picture_bytes = q.put, 0

            def count(item, *args, **kwargs):
                if item is not None:
                    self.picture_bytes += len(item[1].data)
                return original(item, *args, **kwargs)
            q.put = count
        before, started = self.picture_bytes, asyncio.get_running_loop().time()
        await asyncio.sleep(seconds)
        return (self.picture_bytes - before) * 8 / 1000 / (asyncio.get_running_loop().time() - started)

    async def audio_frames(self, count: int, seconds: float = 20) -> list:
        async with asyncio.timeout(seconds):
            track = await self.tracks["audio"]
            return [await track.recv() for _ in range(count)]

    async def close(self) -> None:
        await self.pc.close()
        for track in self.sent:
            track.stop()


class KioskMesh:
    """The kiosk's call: ``encoded`` is the camera's H.264 passthrough (Pi 4); False gives frames (VP8).
    ``fps``, ``bitrate``, ``fill`` and ``grain``: the camera's (:class:`FakeCamera`); ``upload_kbit_s``: the call's
    upload budget."""

    def __init__(self, *, encoded: bool = True, size=(640, 480), fps: int = 30, bitrate: int = 1_000_000,
                 fill: bool = False, grain: int = 0, upload_kbit_s: int = DEFAULT_CALL_UPLOAD_KBIT_S) -> None:
        self.camera = FakeCamera(*size, fps=fps, bitrate=bitrate, encoded=encoded, fill=fill, grain=grain)
        self.received: dict[str, dict[str, MediaStreamTrack]] = defaultdict(dict)
        self.states: dict[str, list[str]] = defaultdict(list)
        self.connected: dict[str, asyncio.Event] = defaultdict(asyncio.Event)
        self.playing: list = []  # the speaker's mix, once the clerk's voice arrived
        track = self.camera.track()
        frames = (lambda: self.camera.track(encoded=False)) if self.camera.encoded else None
        clerk = CallPeer([], [track, SyntheticMicrophoneTrack()], on_remote_track=lambda t: self._heard("clerk", t),
                         video_codecs=offered_video_codecs(self.camera.encoded), frames=frames,
                         on_state=lambda state: self._state("clerk", state), ice_networks=NETWORKS)
        self.call = MeshCall(clerk, self._new_guest, upload_kbit_s=upload_kbit_s)
        self.call.on_guest_state = self._state

    def _new_guest(self, who, tracks, codecs, on_state) -> CallPeer:
        return CallPeer([], tracks, on_remote_track=lambda t: self._heard(who, t), video_codecs=codecs,
                        on_state=on_state, ice_networks=NETWORKS)

    def _heard(self, who: str, track: MediaStreamTrack) -> None:
        self.received[who][track.kind] = track
        if track.kind == "audio" and (mix := self.call.hear(who, track)) is not None:
            self.playing.append(mix)
        elif track.kind == "video":
            self.call.clerk._drain(track) if who == "clerk" else self.call.guests[who]._drain(track)

    def _state(self, who: str, state: str) -> None:
        self.states[who].append(state)
        if state == "connected":
            self.connected[who].set()

    async def call_clerk(self, clerk: Remote) -> None:
        await self.call.accept_answer(await clerk.answer(await self.call.offer()))
        async with asyncio.timeout(20):
            await self.connected["clerk"].wait()

    async def add_guest(self, peer: str, guest: Remote) -> None:
        await self.call.accept_guest_answer(peer, await guest.answer(await self.call.add_guest(peer)))
        async with asyncio.timeout(20):
            await self.connected[peer].wait()

    async def close(self) -> None:
        for mix in self.playing:
            mix.stop()
        await self.call.close()
        self.camera.close()


def moving(clocks: list[int | None]) -> bool:
    """Every picture carries the kiosk camera's clock, and it advances."""
    return None not in clocks and clocks[-1] > clocks[0]
