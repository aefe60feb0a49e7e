"""One camera and one microphone, several peer connections: the kiosk's picture is encoded once.

In a call with a guest (an interpreter, a colleague) the kiosk keeps one peer connection per other
participant (a mesh: docs/decisions/0007-three-way-calls.md). The camera and the microphone are still
captured once; a :class:`Fanout` reads the source track in one task and hands every item to a
:class:`Branch` per peer connection, which that connection's sender pulls from.

Video is encoded once for everyone:

- **H.264 packets** (Pi 4 passthrough): each access unit the camera's hardware encoder hands over goes
  to every sender unchanged; aiortc packetises it per peer (``H264Encoder.pack``).
- **Frames** (VP8: a clerk's browser without H.264, a Pi 5, a USB camera): :class:`Vp8PacketEncoder`
  here encodes each frame once with aiortc's own settings, and every sender packetises the packets
  (``Vp8Encoder.pack``) instead of encoding the frames again.

A peer that joins later must start at a key frame: its branch drops everything until one comes, and
the source is asked for one at once (the camera's hardware encoder, through
:meth:`appliance.hardware.encoded.EncodedVideoTrack.request_keyframe`, or the VP8 encoder here).
A receiver's picture-loss request (RTCP PLI/FIR) asks the same way (:func:`forward_keyframe_requests`);
for packets aiortc would otherwise ignore it.

The microphone's voice is encoded once as well (:class:`OpusPacketEncoder`, in the low-delay mode of
appliance/call/audio_send.py).

Each item is also packetised once (:class:`SharedPacker`): splitting an H.264 access unit into its NAL
units and those into RTP payloads (or a VP8 frame, or wrapping an Opus packet) gives the same payloads
for every peer, so every sender takes them from one cache instead of doing it again. Per peer the kiosk
then only writes the RTP header, encrypts and sends (bench three_way).
"""
from __future__ import annotations

import asyncio
import collections
import fractions
import logging
import time
from collections.abc import Callable

import av
from aiortc.codecs.base import Encoder
from aiortc.codecs.h264 import H264Encoder
from aiortc.codecs.opus import OpusEncoder
from aiortc.codecs.vpx import DEFAULT_BITRATE, Vp8Encoder
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from appliance.call.audio_send import SENDER_ATTRIBUTE

log = logging.getLogger(__name__)

BRANCH_QUEUE = 8             # items (~270 ms of video at 30 fps): more would only add latency
KEYFRAME_REQUEST_GAP_S = 0.5  # the source is asked for a key frame at most this often
SOURCE_LINKS = ("_source", "source")  # where the kiosk's wrapping tracks keep the track they wrap
OPUS_RATE, OPUS_FRAME, OPUS_BITRATE = 48000, 960, 96000  # what aiortc's own Opus encoder sends


def keyframe_requester(track: MediaStreamTrack | None) -> Callable[[], bool] | None:
    """The ``request_keyframe`` of the encoded track under ``track``'s wrappers (tee, watch, breakage)."""
    for _ in range(8):
        if track is None:
            return None
        request = getattr(track, "request_keyframe", None)
        if callable(request):
            return request
        track = next((getattr(track, name) for name in SOURCE_LINKS if getattr(track, name, None) is not None),
                     None)
    return None


def forward_keyframe_requests(sender, request: Callable[[], None]) -> bool:
    """Have ``sender``'s RTCP PLI/FIR also call ``request`` (aiortc forces key frames only when it encodes).

    False if the installed aiortc's sender is built otherwise (the source's periodic key frames remain)."""
    original = getattr(sender, "_send_keyframe", None)
    if not callable(original):
        log.warning("aiortc's sender has no key frame hook; a receiver that lost the picture waits for "
                    "the camera's next periodic key frame")
        return False

    def send_keyframe() -> None:
        original()
        request()
    sender._send_keyframe = send_keyframe
    return True


class SharedPacker:
    """RTP payloads of each encoded item, made once for every sender of the fan-out.

    aiortc's sender packetises an ``av.Packet`` with its own encoder's ``pack`` (H.264: split into NAL
    units, then FU-A/STAP-A; VP8: the payload descriptor; Opus: as it is). The payloads depend only on the
    item (and, for VP8, on a picture id that counts the frames), so the first sender to take an item packs
    it and the others find the result here. The RTP header (sequence number, SSRC, time offset) and the
    encryption stay each sender's own.
    """

    RECENT = BRANCH_QUEUE + 4  # items a slow sender can still be behind the fastest one

    def __init__(self, packer: Encoder) -> None:
        self._packer = packer
        self._recent: collections.OrderedDict[int, tuple[object, list[bytes], int]] = collections.OrderedDict()
        self.packed = 0  # items packetised (once each), for tests
        self.reused = 0  # times a sender took an item's payloads from here

    def pack(self, item) -> tuple[list[bytes], int]:
        hit = self._recent.get(id(item))
        if hit is not None and hit[0] is item:  # the same object: keeping it here keeps its id unique
            self.reused += 1
            return hit[1], hit[2]
        payloads, timestamp = self._packer.pack(item)
        self._recent[id(item)] = (item, payloads, timestamp)
        if len(self._recent) > self.RECENT:
            self._recent.popitem(last=False)
        self.packed += 1
        return payloads, timestamp

    def encode(self, frame, force_keyframe: bool = False):
        """Only for a frame that is no packet (not expected from a fan-out of packets): encoded as aiortc would."""
        return self._packer.encode(frame, force_keyframe)


def share_packing(sender, packer: SharedPacker) -> bool:
    """Have ``sender`` (an ``RTCRtpSender`` whose track yields packets) take its payloads from ``packer``.

    False (and the sender packs for itself, as before) if the installed aiortc keeps its encoder elsewhere."""
    if not hasattr(sender, SENDER_ATTRIBUTE):
        log.warning("aiortc's sender is built differently than expected; each peer's copy of the picture "
                    "is packetised on its own")
        return False
    setattr(sender, SENDER_ATTRIBUTE, packer)  # read at every item, after the track's recv()
    return True


class Vp8PacketEncoder:
    """Frames to VP8 ``av.Packet``s, once for every peer; settings as aiortc's ``Vp8Encoder``.

    ``bitrate`` may change during the call (the upload budget, appliance/call/upload.py): the encoder is then
    opened again at the next frame, with a key frame, as aiortc's own encoder does for a new target bitrate."""

    def __init__(self, bitrate: int = DEFAULT_BITRATE) -> None:
        self.bitrate = bitrate
        self.max_bitrate = bitrate  # what a budget may give it at most
        self.codec: av.CodecContext | None = None
        self.force_keyframe = True  # the first frame of every receiver is a key frame
        self.frames = 0

    def encode(self, frame: av.VideoFrame) -> list[av.Packet]:
        if frame.format.name != "yuv420p":
            frame = frame.reformat(format="yuv420p")
        if self.codec is not None and ((frame.width, frame.height) != (self.codec.width, self.codec.height)
                                       or self.codec.bit_rate != self.bitrate):
            self.codec = None
        if self.codec is None:
            self.codec = self._open(frame.width, frame.height)
            self.force_keyframe = True
        pts, time_base = frame.pts, frame.time_base
        if self.force_keyframe:
            self.force_keyframe = False
            frame.pict_type = av.video.frame.PictureType.I
        packets = []
        for packet in self.codec.encode(frame):
            # lag-in-frames 0: each packet is this frame's; keep the camera's clock for aiortc's RTP time
            packet.pts, packet.time_base = pts, time_base
            packets.append(packet)
        self.frames += 1
        return packets

    def _open(self, width: int, height: int) -> av.CodecContext:
        codec = av.CodecContext.create("libvpx", "w")
        codec.width, codec.height, codec.pix_fmt = width, height, "yuv420p"
        codec.bit_rate = self.bitrate
        codec.gop_size = 3000  # key frames on request, as aiortc's
        codec.qmin, codec.qmax = 2, 56
        codec.options = {"bufsize": str(self.bitrate), "cpu-used": "-6", "deadline": "realtime",
                         "lag-in-frames": "0", "minrate": str(self.bitrate), "maxrate": str(self.bitrate),
                         "noise-sensitivity": "4", "overshoot-pct": "15", "partitions": "0",
                         "static-thresh": "1", "undershoot-pct": "100"}
        # One thread, as aiortc's at this size: with more, libvpx took 30 times the CPU on the busy build host.
        codec.thread_count = 1
        return codec


class OpusPacketEncoder:
    """Microphone frames to Opus ``av.Packet``s (20 ms, 48 kHz stereo, 96 kbit/s as aiortc's), once for every
    peer; in Opus's low-delay mode, as each sender's own encoder would be (appliance/call/audio_send.py)."""

    def __init__(self) -> None:
        from appliance.call.audio_send import APPLICATION
        self.codec = av.CodecContext.create("libopus", "w")
        self.codec.bit_rate = OPUS_BITRATE
        self.codec.format = "s16"
        self.codec.layout = "stereo"
        self.codec.sample_rate = OPUS_RATE
        self.codec.time_base = fractions.Fraction(1, OPUS_RATE)
        self.codec.options = {"application": APPLICATION}
        self.resampler = av.AudioResampler(format="s16", layout="stereo", rate=OPUS_RATE, frame_size=OPUS_FRAME)
        self.first_pts: int | None = None
        self.frames = 0

    def encode(self, frame: av.AudioFrame) -> list[av.Packet]:
        packets = []
        for chunk in self.resampler.resample(frame):
            packets += self.codec.encode(chunk)
        for packet in packets:
            if self.first_pts is None:
                self.first_pts = packet.pts  # libopus starts below zero (its pre-skip): aiortc counts from here
            packet.pts -= self.first_pts
            packet.time_base = self.codec.time_base
        self.frames += 1
        return packets


class Branch(MediaStreamTrack):
    """What one peer connection sends: the fan-out's items, from a key frame on where that matters."""

    def __init__(self, fanout: Fanout) -> None:
        super().__init__()
        self.kind = fanout.kind
        self._fanout: Fanout | None = fanout
        self._items: collections.deque = collections.deque()
        self._ready = asyncio.Event()
        self.need_keyframe = fanout.keyframes
        self.dropped = 0

    def put(self, item) -> None:
        if self._fanout is None:
            return
        key = bool(getattr(item, "is_keyframe", False))
        if self.need_keyframe and not key:
            self.dropped += 1
            return
        if len(self._items) >= BRANCH_QUEUE:
            self.dropped += len(self._items)
            self._items.clear()
            if self._fanout.keyframes and not key:  # a P-frame without its predecessors decodes to garbage
                self.need_keyframe = True
                self.dropped += 1
                self._fanout.request_keyframe()
                return
        self.need_keyframe = False
        self._items.append(item)
        self._ready.set()

    def end(self) -> None:
        """The source ended: ``recv`` raises once the queue is empty."""
        self._fanout = None
        self._ready.set()

    async def recv(self):
        while not self._items:
            if self.readyState != "live" or self._fanout is None:
                raise MediaStreamError
            self._ready.clear()
            await self._ready.wait()
        return self._items.popleft()

    def stop(self) -> None:
        fanout, self._fanout = self._fanout, None
        if self.readyState == "live":
            super().stop()
        self._ready.set()
        if fanout is not None:
            fanout.remove(self)


class Fanout:
    """``source`` read once, every item to every :meth:`branch`.

    ``vp8``: ``source`` yields frames, encoded here once to VP8 packets; ``opus``: audio frames, encoded here
    once to Opus packets. Otherwise items pass as they are: H.264 packets (``keyframes`` then defaults to
    true: a branch starts at a key frame) or audio frames.
    The source is not stopped here: whoever opened it (the clerk's peer connection) stops it, and then
    every branch ends.
    """

    def __init__(self, source: MediaStreamTrack, *, vp8: bool = False, opus: bool = False,
                 keyframes: bool | None = None, vp8_bitrate: int = DEFAULT_BITRATE, tap: bool = False) -> None:
        """``tap``: ``source`` keeps its one reader (the clerk's sender), and every item that reader takes is
        also handed to the branches. For H.264 packets this is the only safe way in: a second reader of
        the camera would take every other P-frame from the first, whose picture then breaks up."""
        self.source, self.kind = source, source.kind
        self.encoder = Vp8PacketEncoder(vp8_bitrate) if vp8 else OpusPacketEncoder() if opus else None
        self.keyframes = vp8 or (source.kind == "video" if keyframes is None else keyframes)
        # Packets (VP8 or Opus encoded here, or the camera's H.264 tapped): packetised once for every sender.
        packer = (Vp8Encoder() if vp8 else OpusEncoder() if opus
                  else H264Encoder() if tap and self.kind == "video" else None)
        self.packer = SharedPacker(packer) if packer is not None else None
        self._camera_keyframe = None if self.encoder is not None else keyframe_requester(source)
        self._branches: list[Branch] = []
        self._last_request = 0.0
        self.stats = {"items_in": 0, "items_out": 0, "keyframe_requests": 0}
        self._task: asyncio.Task | None = None
        self._tapped = False
        if tap and self.encoder is None:
            self._tap(source)
        else:
            self._task = asyncio.get_running_loop().create_task(self._pump(), name=f"{self.kind}-fanout")

    def _tap(self, source: MediaStreamTrack) -> None:
        read = source.recv

        async def recv():
            try:
                item = await read()
            except MediaStreamError:
                self._ended()
                raise
            self._hand_out([item])
            return item
        source.recv = recv  # on this instance only: its reader's next call comes through here
        self._tapped = True

    def branch(self) -> Branch:
        """A new track for one more peer connection; it starts with the source's next key frame.
        (:meth:`pack_for` lets that connection's sender share the packetising.)"""
        branch = Branch(self)
        self._branches.append(branch)
        if self.keyframes:
            self.request_keyframe(at_once=True)
        return branch

    def pack_for(self, sender) -> None:
        """``sender`` sends this fan-out's items: its payloads come from the shared packing (:class:`SharedPacker`)."""
        if self.packer is not None and sender is not None:
            share_packing(sender, self.packer)

    def remove(self, branch: Branch) -> None:
        if branch in self._branches:
            self._branches.remove(branch)

    @property
    def branches(self) -> int:
        return len(self._branches)

    def request_keyframe(self, at_once: bool = False) -> None:
        """Ask the source for a key frame soon (a new receiver, or one that lost the picture)."""
        now = time.monotonic()
        if not at_once and now - self._last_request < KEYFRAME_REQUEST_GAP_S:
            return
        self._last_request = now
        self.stats["keyframe_requests"] += 1
        if isinstance(self.encoder, Vp8PacketEncoder):
            self.encoder.force_keyframe = True
        elif self._camera_keyframe is not None:
            self._camera_keyframe()
        # else: a camera that cannot be asked; its encoder's periodic key frame (every second) comes anyway

    def _hand_out(self, items: list) -> None:
        self.stats["items_in"] += 1
        for out in items:
            for branch in list(self._branches):
                branch.put(out)
                self.stats["items_out"] += 1

    def _ended(self) -> None:
        for branch in list(self._branches):
            branch.end()

    async def _pump(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                item = await self.source.recv()
                if not self._branches:
                    self.stats["items_in"] += 1
                    continue
                if isinstance(self.encoder, OpusPacketEncoder):
                    # 20 ms of voice encodes in a fraction of a millisecond: handing it to a thread and back
                    # cost the event loop more than the encoding itself (bench three_way).
                    self._hand_out(self.encoder.encode(item))
                elif self.encoder is not None:  # a VP8 frame takes milliseconds: not on the event loop
                    self._hand_out(await loop.run_in_executor(None, self.encoder.encode, item))
                else:
                    self._hand_out([item])
        except MediaStreamError:
            pass
        except Exception:  # noqa: BLE001 - a broken source ends the picture for every peer, never the call
            log.exception("the %s for the call's peers stopped", self.kind)
        finally:
            self._ended()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._tapped:
            vars(self.source).pop("recv", None)
            self._tapped = False
        for branch in list(self._branches):
            branch.stop()
