"""The benchmark's kiosk, in a process of its own: a scripted kiosk (like ``appliance.sim.kiosk.SimulatedKiosk``)
that talks to central with ``CentralLink`` and calls with the appliance's ``CallPeer``; the parent says per visit
how it sends video and as which kiosk (token) it asks, and it reports each step with a ``time.time()`` stamp.

Each visit comes from a fresh kiosk: central allows one kiosk 3 visit requests in quick succession, then one
per 20 s (VISIT_REQUESTS, central/live/limits.py), and a real kiosk carries one citizen at a time. So before
a request with a token it has not used, this process closes its link to central and connects as that kiosk;
the encoder, the call peer's code and everything warmed up stay, and nothing of it is in a measured interval
(they start at the clerk's click)."""
from __future__ import annotations

import asyncio
import logging
import os
import time

from bench._kiosk_call.standin_camera import StandinCamera

DEPARTMENT = "buergerbuero"
PASSTHROUGH_BITRATE = 1_500_000  # hardware.pi.camera's default for 1280x720


class BenchKiosk:
    """A scripted kiosk (like SimulatedKiosk) whose call setup the parent chooses per visit."""

    def __init__(self, conn, central_url: str, token: str) -> None:
        self.conn, self.central_url, self.token = conn, central_url, token
        self.loop = asyncio.get_running_loop()
        self.link = None
        self.peer = None
        self.visit_id: str | None = None
        self.config: dict = {}
        self.counts = {"remote_video": 0, "remote_audio": 0}
        self.source = None
        self.encoded = None
        self.microphone = None  # the call's SyntheticMicrophoneTrack, for mouth-to-ear clicks
        self.audio_timing = None
        self.camera = StandinCamera()

    def send(self, *event) -> None:
        self.conn.send(event)

    async def run(self) -> None:
        import aiohttp

        from appliance.call.signaling import CentralLink

        commands: asyncio.Queue = asyncio.Queue()

        def readable() -> None:
            try:
                commands.put_nowait(self.conn.recv())
            except EOFError:
                commands.put_nowait(("exit",))
        self.loop.add_reader(self.conn.fileno(), readable)

        async def connect(session: aiohttp.ClientSession, token: str) -> asyncio.Task:
            self.token, self.link = token, CentralLink(self.central_url, token, session)
            await self.link.connect_with_backoff(attempts=10)
            return self.loop.create_task(self._messages())

        async with aiohttp.ClientSession() as session:
            messages = await connect(session, self.token)
            self.send("ready", os.getpid(), self.camera.pid)
            try:
                while True:
                    cmd = await commands.get()
                    if cmd[0] == "request":
                        from protocol import messages as m
                        self.config = cmd[1]
                        if len(cmd) > 2 and cmd[2] != self.token:  # the next visit's kiosk
                            messages.cancel()  # quietly: this link's end is no error
                            await asyncio.gather(messages, return_exceptions=True)
                            await self.link.close()
                            messages = await connect(session, cmd[2])
                        await self.link.send(m.VisitRequest(type="visit.request", department=DEPARTMENT, language="de"))
                    elif cmd[0] == "reset":  # after a failed measurement: leave the visit, whatever its state
                        from protocol import messages as m
                        if self.visit_id:
                            await self.link.send(
                                m.VisitHangup(type="visit.hangup", visit_id=self.visit_id) if self.peer is not None
                                else m.VisitCancel(type="visit.cancel", visit_id=self.visit_id))
                        else:
                            self.send("ended", "idle", time.time())
                    elif cmd[0] == "stats":
                        self.send("stats", self._stats())
                    elif cmd[0] == "audio_timing":
                        self.send("audio_timing", self.audio_timing.summary() if self.audio_timing else None)
                    elif cmd[0] == "say":  # a click into the microphone; when it reached the microphone
                        from bench._kiosk_call.mouth_to_ear import click
                        if self.microphone is None:
                            self.send("error", "no microphone in this call to say anything into")
                        else:
                            said = self.microphone.say(click())
                            self.send("said", said + time.time() - time.monotonic())
                    elif cmd[0] == "exit":
                        break
                    if messages.done():
                        raise RuntimeError(f"central link ended: {messages.exception()!r}")
            finally:
                messages.cancel()
                await self._end_call()
                await self.link.close()
                self.loop.remove_reader(self.conn.fileno())

    def _stats(self) -> dict:
        out = dict(self.counts)
        if self.source is not None:
            out["source_frames"] = self.source._index + 1
        if self.encoded is not None:
            out["encoded_in"], out["encoded_dropped"] = self.encoded.frames_in, self.encoded.dropped
        return out

    async def _messages(self) -> None:
        from protocol import messages as m
        async for message in self.link.messages():
            try:
                if isinstance(message, m.VisitQueued):
                    self.visit_id = message.visit_id
                    self.send("queued", message.visit_id)
                elif isinstance(message, m.CallStart):
                    self.send("call_start", time.time())
                    await self._start_call(message)
                elif isinstance(message, m.RtcAnswer) and self.peer:
                    await self.peer.accept_answer(message.sdp)
                elif isinstance(message, m.RtcCandidate) and self.peer:
                    await self.peer.add_candidate(message.candidate)
                elif isinstance(message, m.VisitEnded):
                    await self._end_call()
                    self.visit_id = None
                    self.send("ended", message.reason, time.time())
                elif isinstance(message, m.Error):
                    self.send("central_error", message.code, message.detail)
            except Exception as exc:  # report, do not die silently
                self.send("error", f"{type(exc).__name__}: {exc}")
        self.send("error", "connection to central closed")

    async def _start_call(self, message) -> None:
        from aiortc.mediastreams import MediaStreamError

        from appliance.call.peer import CallPeer
        from appliance.hardware.encoded import h264_codecs
        from appliance.hardware.fake.backend import MemorySpeaker
        from appliance.hardware.fake.camera import TestPatternTrack
        from appliance.hardware.fake.microphone import SyntheticMicrophoneTrack
        from appliance.kiosk.video_feed import receiver_for, tap_encoded_frames
        from bench._kiosk_call.mouth_to_ear import Ear
        from protocol import messages as m

        await self._end_call()
        cfg = self.config
        self.counts = {"remote_video": 0, "remote_audio": 0}
        if cfg["mode"] == "passthrough":
            video = self.camera.open(cfg["width"], cfg["height"], cfg["fps"], PASSTHROUGH_BITRATE)
            self.encoded, self.source = video, None
        else:
            video = TestPatternTrack(cfg["width"], cfg["height"], fps=cfg["fps"])
            self.source, self.encoded = video, None
        self.microphone = SyntheticMicrophoneTrack() if cfg["audio"] else None
        tracks = [video] + ([self.microphone] if cfg["audio"] else [])
        # The clerk's voice goes to a fake speaker as the appliance plays it (appliance.service.main._play);
        # the ear finds the clerk page's clicks in what it plays.
        speaker = MemorySpeaker(far_end=Ear(lambda heard: self.send("heard", heard)))
        codecs = h264_codecs() if cfg["mode"] in ("h264", "passthrough") else None

        def on_encoded(codec, frame) -> None:
            if self.counts["remote_video"] == 0:
                self.send("first_video", time.time(), 0, 0)
            self.counts["remote_video"] += 1

        def on_track(track) -> None:
            if track.kind == "video" and cfg["tap"]:
                # As the appliance does (appliance/kiosk/video_feed.py): the clerk's picture is
                # taken from the receiver still encoded, for the kiosk page to decode.
                if tap_encoded_frames(receiver_for(peer.pc, track), on_encoded):
                    return
                self.send("tap_failed", time.time())

            async def consume() -> None:
                first = True
                try:
                    while True:
                        frame = await track.recv()
                        if track.kind == "video":
                            if first:
                                self.send("first_video", time.time(), frame.width, frame.height)
                                first = False
                            self.counts["remote_video"] += 1
                        else:
                            await speaker.play(frame)
                            self.counts["remote_audio"] += 1
                except MediaStreamError:
                    pass
            self.loop.create_task(consume())

        peer = CallPeer(message.ice_servers, tracks, on_remote_track=on_track, video_codecs=codecs)
        if not cfg["receive"]:
            for transceiver in peer.pc.getTransceivers():
                transceiver.direction = "sendonly"
        self.peer = peer
        if self.microphone is not None:
            from bench._kiosk_call.audio_timing import AudioTiming
            audio = next(t for t in peer.pc.getTransceivers() if t.kind == "audio")
            self.audio_timing = AudioTiming()
            self.audio_timing.attach(self.microphone, audio.sender, audio.receiver)

        @peer.pc.on("connectionstatechange")
        def _state() -> None:
            if peer.pc.connectionState == "connected":
                self.send("connected", time.time())
                # As the appliance does: central gives a call up whose kiosk has not said so within
                # call_connect_timeout_s (30 s), which would end every streaming window.
                self.loop.create_task(self.link.send(
                    m.RtcState(type="rtc.state", visit_id=message.visit_id, state="connected")))
        sdp = await peer.offer()
        await self.link.send(m.RtcOffer(type="rtc.offer", visit_id=message.visit_id, sdp=sdp))
        self.send("offer_sent", time.time())

    async def _end_call(self) -> None:
        peer, self.peer = self.peer, None
        if peer is not None:
            await peer.close()  # stops the tracks; the encoded track's on_stop stops the stand-in
        self.encoded = None
        self.source = None
        self.microphone = None
        self.audio_timing = None


def kiosk_main(conn, central_url: str, token: str) -> None:
    """Process entry point (spawn)."""
    logging.basicConfig(level=logging.WARNING)

    async def main() -> None:
        kiosk = BenchKiosk(conn, central_url, token)
        try:
            await kiosk.run()
        finally:
            kiosk.camera.close()
    try:
        asyncio.run(main())
    except Exception as exc:
        try:
            conn.send(("error", f"kiosk process failed: {type(exc).__name__}: {exc}"))
        except (BrokenPipeError, OSError):
            pass
        raise
