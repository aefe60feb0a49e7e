"""The camera read once for every peer of a call: each branch starts at a key frame, a new branch asks
the camera's encoder for one at once, and a branch that falls behind waits for the next (in memory)."""
from __future__ import annotations

import asyncio

import av
from aiortc.mediastreams import MediaStreamTrack

from appliance.call.fanout import BRANCH_QUEUE, Fanout
from appliance.hardware.encoded import EncodedVideoTrack


class Packets(MediaStreamTrack):
    """H.264-like packets on demand: ``send(key)``; ``request_keyframe`` counted as a camera would."""

    kind = "video"

    def __init__(self) -> None:
        super().__init__()
        self.queue: asyncio.Queue = asyncio.Queue()
        self.requests = 0

    def send(self, key: bool, number: int) -> None:
        packet = av.Packet(bytes([number]))
        packet.is_keyframe = key
        self.queue.put_nowait(packet)

    def request_keyframe(self) -> bool:
        self.requests += 1
        return True

    async def recv(self):
        return await self.queue.get()


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_a_new_branch_asks_for_a_key_frame_and_starts_at_it():
    camera = Packets()
    fanout = Fanout(camera)
    first = fanout.branch()
    camera.send(True, 1)
    camera.send(False, 2)
    await settle()
    second = fanout.branch()
    assert camera.requests == 2  # one per branch, at once
    camera.send(False, 3)  # the second cannot use this one
    camera.send(True, 4)
    await settle()
    assert [bytes(await first.recv())[0] for _ in range(4)] == [1, 2, 3, 4]
    assert bytes(await second.recv())[0] == 4
    await fanout.close()


async def test_a_branch_that_falls_behind_drops_to_the_next_key_frame():
    camera = Packets()
    fanout = Fanout(camera)
    slow = fanout.branch()
    camera.send(True, 0)
    for number in range(1, BRANCH_QUEUE + 3):
        camera.send(False, number)
    await settle()
    assert slow.need_keyframe  # what is queued for it cannot be decoded any more: dropped
    camera.send(True, 99)
    await settle()
    assert bytes(await slow.recv())[0] == 99
    await fanout.close()


async def test_the_camera_track_forwards_key_frame_requests_to_its_encoder():
    track = EncodedVideoTrack()
    asked = []
    assert not track.request_keyframe()  # a camera that cannot be asked says so
    track.on_keyframe_request = lambda: asked.append(True)
    assert track.request_keyframe() and asked == [True]
    track.stop()
