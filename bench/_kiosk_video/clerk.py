"""The clerk's side of bench.kiosk_video_path: an aiortc peer sending the test pattern as VP8.

Runs in its own process so that its encoder's CPU time is not counted as the
kiosk's. Driven through a ``multiprocessing`` pipe: ``("offer",)`` creates one
more send-only peer connection and answers with its SDP, ``("answer", i, sdp)``
completes peer ``i``, ``("stop",)`` ends the process.
"""
from __future__ import annotations

import asyncio
import logging

import numpy as np
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.contrib.media import MediaRelay

from appliance.hardware.fake.camera import TestPatternTrack

log = logging.getLogger(__name__)


class BusyPatternTrack(TestPatternTrack):
    """The test pattern with camera-like content below the clock band.

    A smooth texture pans across the picture and every frame carries fresh fine
    noise (like a sensor's), so the encoder and decoder work about as hard as
    with a webcam showing a person, not like with flat colour bars.
    """

    __test__ = False
    BANK = 8

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        rng = np.random.default_rng(4)
        h, w = self.height - self._band, self.width
        coarse = rng.integers(40, 200, (h // 8 + 2, (2 * w) // 8 + 2)).astype(np.float32)
        texture = np.kron(coarse, np.ones((8, 8), np.float32))  # blocks, then a box blur: smooth blobs
        for axis in (0, 1):
            texture = sum(np.roll(texture, s, axis) for s in range(-4, 4)) / 8
        self._texture = texture[:h, :2 * w]
        self._noise = [rng.normal(0, 4, (h, w)).astype(np.float32) for _ in range(self.BANK)]

    def _draw_block(self) -> None:
        super()._draw_block()
        y = self._buf[:self.width * self.height].reshape(self.height, self.width)  # luma plane
        shift = (self._index * 3) % self.width
        area = self._texture[:, shift:shift + self.width] + self._noise[self._index % self.BANK]
        y[self._band:, :] = np.clip(area, 16, 235).astype(np.uint8)
        if self._prev_rect:  # keep the moving block visible on top
            r0, r1, c0, c1 = self._prev_rect
            m = (r1 - r0) // 4
            y[r0:r1, c0:c1] = 16
            y[r0 + m:r1 - m, c0 + m:c1 - m] = 235


async def _serve(conn, width: int, height: int, fps: float, content: str) -> None:
    loop = asyncio.get_running_loop()
    track_cls = BusyPatternTrack if content == "busy" else TestPatternTrack
    source = track_cls(width, height, fps)
    relay = MediaRelay()
    pcs: list[RTCPeerConnection] = []
    commands: asyncio.Queue = asyncio.Queue()
    loop.add_reader(conn.fileno(), lambda: commands.put_nowait(conn.recv()))
    try:
        while True:
            cmd = await commands.get()
            if cmd[0] == "offer":
                pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))  # never a public STUN server
                pc.addTransceiver(relay.subscribe(source, buffered=False), direction="sendonly")
                await pc.setLocalDescription(await pc.createOffer())
                pcs.append(pc)
                conn.send(("offer", len(pcs) - 1, pc.localDescription.sdp))
            elif cmd[0] == "answer":
                await pcs[cmd[1]].setRemoteDescription(RTCSessionDescription(sdp=cmd[2], type="answer"))
                conn.send(("ok",))
            elif cmd[0] == "stop":
                break
    finally:
        loop.remove_reader(conn.fileno())
        for pc in pcs:
            await pc.close()
        source.stop()


def main(conn, width: int, height: int, fps: float, content: str) -> None:
    """Process entry point (``multiprocessing``, spawn)."""
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(_serve(conn, width, height, fps, content))
    conn.send(("stopped",))
