"""Pre-encoded H.264 (the Pi 4 camera path): queue policy, the fake encoder, and aiortc passthrough."""
import asyncio
import itertools
import threading
import time

import pytest
from aiortc import RTCConfiguration, RTCPeerConnection
from aiortc.codecs.h264 import H264Encoder
from aiortc.mediastreams import MediaStreamError

from appliance.hardware.encoded import EncodedVideoTrack, TrackOutput, h264_codecs
from appliance.hardware.fake.backend import FakeCamera
from appliance.hardware.fake.camera import read_clock
from appliance.hardware.fake.h264_encoder import FakeH264Encoder


def nal_types(annexb: bytes) -> list[int]:
    return [annexb[i + 3] & 0x1F for i in range(len(annexb) - 3) if annexb[i:i + 3] == b"\x00\x00\x01"]


# --- EncodedVideoTrack's queue ----------------------------------------------

async def drain(track):
    out = []
    while True:
        try:
            out.append(await asyncio.wait_for(track.recv(), 0.05))
        except TimeoutError:
            return out


async def test_packets_and_timestamps():
    track = EncodedVideoTrack()
    track.put(b"\x00\x00\x00\x01\x65key", True, 1_000_000)
    track.put(b"\x00\x00\x00\x01\x41p", False, 1_033_333)
    first, second = await drain(track)
    assert bytes(first) == b"\x00\x00\x00\x01\x65key" and first.is_keyframe
    assert (first.pts, second.pts) == (0, 2999)  # microseconds -> 90 kHz, from the first frame
    assert str(first.time_base) == "1/90000"


async def test_waits_for_a_keyframe_first():
    track = EncodedVideoTrack()
    track.put(b"p0", False, 0)  # a decoder cannot start here
    track.put(b"k1", True, 1)
    track.put(b"p2", False, 2)
    assert [bytes(p) for p in await drain(track)] == [b"k1", b"p2"]
    assert track.dropped == 1


async def test_full_queue_drops_until_next_keyframe_never_a_keyframe():
    track = EncodedVideoTrack(max_queue=3)
    for data, key in [(b"k0", True), (b"p1", False), (b"p2", False),
                      (b"p3", False),   # full: dropped, and so must be p4 (it refers to p3)
                      (b"p4", False)]:
        track.put(data, key)
    assert [bytes(p) for p in await drain(track)] == [b"k0", b"p1", b"p2"]
    track.put(b"p5", False)  # room again, but still no reference picture
    assert await drain(track) == []
    for data, key in [(b"k6", True), (b"p7", False), (b"p8", False), (b"k9", True)]:
        track.put(data, key)  # k9 arrives at a full queue: it replaces the stale frames
    assert [bytes(p) for p in await drain(track)] == [b"k9"]
    assert track.dropped == 2 + 1 + 3


async def test_put_from_another_thread_never_blocks():
    track = EncodedVideoTrack(max_queue=4)
    took = []

    def camera():
        for i in range(2000):
            t = time.perf_counter()
            track.put(b"x" * 1000, i % 30 == 0, i * 33_333)
            took.append(time.perf_counter() - t)

    thread = threading.Thread(target=camera)
    thread.start()
    thread.join(5)
    assert max(took) < 0.05  # nobody reads, yet the camera thread never waits
    got = await drain(track)
    assert 1 <= len(got) <= 4 and got[0].is_keyframe


async def test_stop_ends_recv_and_calls_back():
    stopped = []
    track = EncodedVideoTrack(on_stop=lambda: stopped.append(True))
    pending = asyncio.ensure_future(track.recv())
    await asyncio.sleep(0.01)
    track.stop()
    with pytest.raises(MediaStreamError):
        await pending
    assert stopped == [True]
    TrackOutput(track).outputframe(b"late", True, 0)  # after stop: ignored, no error


# --- the fake encoder behaves like picamera2's -------------------------------

async def test_fake_encoder_output_like_picamera2():
    calls = []
    enough = threading.Event()

    class Recording:
        def outputframe(self, frame, keyframe=True, timestamp=None, packet=None, audio=False):
            calls.append((frame, keyframe, timestamp))
            if len(calls) >= 21:
                enough.set()

    encoder = FakeH264Encoder(bitrate=800_000, repeat=True, iperiod=10, framerate=60, profile="baseline")
    encoder.output, encoder.width, encoder.height = Recording(), 320, 240
    encoder.start()
    await asyncio.to_thread(enough.wait, 5)
    encoder.stop()
    assert encoder.error is None and len(calls) >= 21
    frames, keys, stamps = zip(*calls[:21], strict=True)
    assert all(isinstance(f, bytes) for f in frames)
    assert keys == tuple(i % 10 == 0 for i in range(21))  # IDR every iperiod frames
    for frame, key in zip(frames, keys, strict=True):
        types = nal_types(frame)
        if key:  # SPS and PPS in band, before the IDR slice (x264 may add an SEI)
            assert types[:2] == [7, 8] and 5 in types, types
        else:
            assert 5 not in types and 7 not in types, types
    sps = frames[0][frames[0].index(b"\x00\x00\x01\x67") + 4:]
    assert sps[0] == 66  # profile_idc: baseline
    assert stamps[0] == 0 and all(b > a for a, b in itertools.pairwise(stamps))  # microseconds since the first


def test_fake_encoder_refuses_what_it_cannot_do():
    with pytest.raises(ValueError):
        FakeH264Encoder(repeat=False)
    with pytest.raises(RuntimeError):
        FakeH264Encoder().start()  # no output set


# --- end to end through aiortc, without re-encoding ----------------------------

async def test_aiortc_sends_camera_h264_without_reencoding(monkeypatch):
    counts = {"encode": 0, "pack": 0}
    packed: list[bytes] = []
    real_encode, real_pack = H264Encoder.encode, H264Encoder.pack

    def encode(self, frame, force_keyframe=False):
        counts["encode"] += 1
        return real_encode(self, frame, force_keyframe)

    def pack(self, packet):
        counts["pack"] += 1
        packed.append(bytes(packet))
        return real_pack(self, packet)

    monkeypatch.setattr(H264Encoder, "encode", encode)
    monkeypatch.setattr(H264Encoder, "pack", pack)

    camera = FakeCamera(640, 480, fps=30, encoded=True)
    track = camera.track()
    produced: list[bytes] = []
    real_recv = track.recv

    async def recv():
        packet = await real_recv()
        produced.append(bytes(packet))
        return packet

    track.recv = recv

    sender = RTCPeerConnection(RTCConfiguration(iceServers=[]))  # no public STUN, ever
    receiver = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    remote = asyncio.get_running_loop().create_future()
    receiver.on("track", lambda t: remote.done() or remote.set_result(t))
    transceiver = sender.addTransceiver(track, direction="sendonly")
    transceiver.setCodecPreferences(h264_codecs())
    try:
        await sender.setLocalDescription(await sender.createOffer())
        await receiver.setRemoteDescription(sender.localDescription)
        await receiver.setLocalDescription(await receiver.createAnswer())
        await sender.setRemoteDescription(receiver.localDescription)
        assert "H264/90000" in receiver.localDescription.sdp and "VP8" not in receiver.localDescription.sdp

        incoming = await asyncio.wait_for(remote, 10)
        clocks = []
        async with asyncio.timeout(20):
            while len(clocks) < 30:
                frame = await incoming.recv()
                assert (frame.width, frame.height) == (640, 480)
                clocks.append(read_clock(frame))
    finally:
        await sender.close()
        await receiver.close()
        camera.close()

    assert None not in clocks
    assert all(b > a for a, b in itertools.pairwise(clocks))  # the picture moves on
    assert clocks[-1] - clocks[0] >= 500  # ~1 s of 30 fps video
    assert abs(time.time() * 1000 % 2**32 - clocks[-1]) < 2000  # and it is live, not stale
    assert counts["encode"] == 0 and counts["pack"] >= 30
    # aiortc packetised exactly the bytes the camera's encoder produced.
    assert packed == produced[:len(packed)]
