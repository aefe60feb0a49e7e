"""The kiosk process of bench three_way: the appliance's own MeshCall, driven over a pipe by the bench.

Its camera is the Pi 4 path (``EncodedVideoTrack`` fed access units by the stand-in hardware encoder in a
process of its own, bench/_kiosk_call/standin_camera.py, as bench kiosk_call's kiosk has it) or, in the
``vp8`` mode, the test pattern's frames at the kiosk's software size for VP8. What the remote parties send
comes in as the appliance takes it: pictures tapped still encoded (appliance/kiosk/video_feed.py), voices
mixed (appliance/call/mix.py) and handed to a speaker that plays into memory.

Commands (tuples over the pipe): ("offer", who) -> ("offer", who, sdp); ("answer", who, sdp) ->
("connected", who) once media flows; ("remove", who) -> ("removed", who); ("stats",) -> ("stats", dict);
("exit",).
"""
from __future__ import annotations

import asyncio
import os

from bench._kiosk_call.standin_camera import StandinCamera

PASSTHROUGH = dict(width=1280, height=720, fps=30, bitrate=1_500_000)  # as hardware.pi.camera sets it up
NETWORKS = ("127.0.0.0/8",)


class MeshKiosk:
    def __init__(self, conn, mode: str, upload_kbit_s: int) -> None:
        self.conn, self.mode, self.upload_kbit_s = conn, mode, upload_kbit_s
        self.camera = StandinCamera()
        self.connected: set[str] = set()

    def _camera(self):
        from appliance.call.fallback import FallbackVideoTrack
        from appliance.hardware.fake.camera import TestPatternTrack
        from appliance.hardware.software_video import SOFTWARE_FPS, SOFTWARE_SIZE

        if self.mode == "vp8":  # a camera giving frames: what the kiosk encodes itself, once
            return FallbackVideoTrack(TestPatternTrack(1280, 720, fps=30), *SOFTWARE_SIZE, SOFTWARE_FPS)
        # Padded to the bitrate the encoder is set to (the call's upload budget lowers it while a guest is in the
        # call): what a peer costs the kiosk grows with the bytes it sends (standin_camera.py).
        return self.camera.open(**PASSTHROUGH, pad=True)

    async def run(self) -> None:
        from appliance.call.mesh import MeshCall
        from appliance.call.peer import CallPeer, offered_video_codecs
        from appliance.hardware.fake.backend import MemorySpeaker
        from appliance.hardware.fake.microphone import SyntheticMicrophoneTrack
        from appliance.kiosk.guest_video import GuestVideoFeeds
        from appliance.kiosk.video_feed import ClerkVideoFeed, receiver_for

        loop = asyncio.get_running_loop()
        clerk_video, guest_video, speaker = ClerkVideoFeed(), GuestVideoFeeds(), MemorySpeaker()
        playing: list[asyncio.Task] = []

        async def play(mix) -> None:
            while True:
                await speaker.play(await mix.recv())

        def route(who: str, peer, track) -> None:
            if track.kind == "video":
                feed = clerk_video if who == "clerk" else guest_video.feed(who)
                feed.attach(track, receiver_for(peer.pc, track))
            elif (mix := call.hear(who, track)) is not None:
                playing.append(loop.create_task(play(mix)))

        def state(who: str, value: str) -> None:
            if value == "connected":
                self.conn.send(("connected", who))

        encoded = self.mode != "vp8"
        # As appliance.service.main: an encoded camera also offers its frames for a clerk without H.264
        # (not taken here: the clerk takes H.264); a camera giving frames leaves aiortc's codec order (VP8 first).
        clerk = CallPeer([], [self._camera(), SyntheticMicrophoneTrack()], video_codecs=offered_video_codecs(encoded),
                         frames=(lambda: None) if encoded else None,
                         on_remote_track=lambda track: route("clerk", clerk, track),
                         on_state=lambda value: state("clerk", value), ice_networks=NETWORKS)

        def new_guest(who, tracks, codecs, on_state):
            guest = CallPeer([], tracks, video_codecs=codecs, on_remote_track=lambda track: route(who, guest, track),
                             on_state=on_state, ice_networks=NETWORKS)
            return guest

        call = MeshCall(clerk, new_guest, upload_kbit_s=self.upload_kbit_s)  # as the service: the kiosk's setting
        call.on_guest_state = state
        commands: asyncio.Queue = asyncio.Queue()

        def readable() -> None:
            try:
                commands.put_nowait(self.conn.recv())
            except EOFError:  # the bench is gone: stop, instead of being woken for the closed pipe forever
                loop.remove_reader(self.conn.fileno())
                commands.put_nowait(("exit",))
        loop.add_reader(self.conn.fileno(), readable)
        self.conn.send(("ready", os.getpid(), self.camera.pid))
        try:
            while True:
                cmd = await commands.get()
                if cmd[0] == "offer":
                    sdp = await (call.offer() if cmd[1] == "clerk" else call.add_guest(cmd[1]))
                    self.conn.send(("offer", cmd[1], sdp))
                elif cmd[0] == "answer":
                    if cmd[1] == "clerk":
                        await call.accept_answer(cmd[2])
                    else:
                        await call.accept_guest_answer(cmd[1], cmd[2])
                elif cmd[0] == "remove":
                    await call.remove_guest(cmd[1])
                    self.conn.send(("removed", cmd[1]))
                elif cmd[0] == "stats":
                    self.conn.send(("stats", await sent_bytes(call)))
                elif cmd[0] == "exit":
                    break
        finally:
            for task in playing:
                task.cancel()
            await call.close()
            self.camera.close()


async def sent_bytes(call) -> dict:
    """Bytes each peer connection sent so far (RTP, all streams), by who."""
    peers = {"clerk": call.clerk, **call.guests}
    out = {}
    for who, peer in peers.items():
        report = await peer.pc.getStats()
        out[who] = sum(getattr(s, "bytesSent", 0) for s in report.values() if s.type == "outbound-rtp")
    return out


def kiosk_main(conn, mode: str, upload_kbit_s: int) -> None:
    """Process entry point (spawn)."""
    import logging
    logging.basicConfig(level=logging.WARNING)

    async def main() -> None:
        await MeshKiosk(conn, mode, upload_kbit_s).run()
    asyncio.run(main())
