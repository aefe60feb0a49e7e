"""What the kiosk's speaker plays in a call with guests: the clerk's voice with every guest's mixed in.

The speaker plays one track (appliance/service/main.py), and the echo canceller's reference is what
the speaker played (its ``far_end`` hook): so mixing *before* the speaker keeps the reference exact,
whoever speaks. :class:`SpeakerMix` is that track.

The clerk's voice sets the pace: each frame of it that arrives takes along whatever the guests'
voices have buffered for the same stretch of time. The clerk's browser sends audio all through a call
(silence, when muted), so the guests are heard as long as the call lasts; their buffers are short
(``GUEST_BACKLOG_MS``), so a guest's clock running faster than the clerk's never becomes a delay. In a
call of two, the clerk's frames pass through untouched.

A guest's voice is decoded right where its packets arrive, on the event loop, when :meth:`SpeakerMix.add`
is given the guest's receiver: aiortc would hand every 20 ms packet to a decoder thread of its own and
every decoded frame back to the loop, two thread hand-overs per packet that cost the kiosk more than
decoding the packet (bench three_way). Without the receiver (or with an aiortc built otherwise) the
track's frames are taken as they come.
"""
from __future__ import annotations

import asyncio
import collections
import fractions
import logging

import av
import numpy as np
from aiortc.codecs import get_decoder
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from appliance.call.receiver_tap import tap_encoded_frames, untap_encoded_frames

log = logging.getLogger(__name__)

RATE = 48000
LAYOUT = "stereo"  # what aiortc's Opus decoder gives
CHANNELS = 2
GUEST_BACKLOG_MS = 80  # more buffered of a guest is dropped from its oldest end
TIME_BASE = fractions.Fraction(1, RATE)


class _Voice:
    """One guest's decoded voice, as samples waiting to be mixed in."""

    def __init__(self, track: MediaStreamTrack) -> None:
        self.track = track
        self.chunks: collections.deque[np.ndarray] = collections.deque()
        self.samples = 0
        self.resampler: av.AudioResampler | None = None
        self.task: asyncio.Task | None = None
        self.receiver = None  # set while its packets are decoded here (:meth:`decode`)
        self._decoder = None
        self._codec: str | None = None

    def decode(self, codec, encoded_frame) -> None:
        """One packet of the guest's voice, from their receiver on the event loop: decoded into the buffer."""
        if codec.name != self._codec:
            self._decoder, self._codec = get_decoder(codec), codec.name
        try:
            frames = self._decoder.decode(encoded_frame)
        except av.FFmpegError as exc:  # a damaged packet: a 20 ms gap, as aiortc's decoder thread skips it
            log.debug("a guest's voice: a packet did not decode (%s)", exc)
            return
        for frame in frames:
            samples, self.resampler = as_samples(frame, self.resampler)
            self.add(samples)

    def add(self, samples: np.ndarray) -> None:
        self.chunks.append(samples)
        self.samples += len(samples)
        limit = RATE * GUEST_BACKLOG_MS // 1000
        while self.samples - len(self.chunks[0]) >= limit:
            self.samples -= len(self.chunks.popleft())

    def mix_into(self, total: np.ndarray) -> None:
        """Add up to ``len(total)`` buffered samples, oldest first, to ``total`` (int32) and drop them here."""
        done, wanted = 0, len(total)
        while done < wanted and self.chunks:
            chunk = self.chunks[0]
            count = min(len(chunk), wanted - done)
            total[done:done + count] += chunk[:count]
            if count < len(chunk):
                self.chunks[0] = chunk[count:]
            else:
                self.chunks.popleft()
            done += count
        self.samples -= done


def _is_speaker_format(frame: av.AudioFrame) -> bool:
    """Packed 16-bit stereo at 48 kHz: what aiortc's Opus decoder gives, and what the mix works in."""
    return frame.format.name == "s16" and frame.layout.name == LAYOUT and frame.sample_rate == RATE


def _samples_of(frame: av.AudioFrame) -> np.ndarray:
    """A (n, 2) int16 view of an s16 stereo ``frame``'s own buffer (no copy; writing to it changes the frame)."""
    return np.frombuffer(frame.planes[0], dtype=np.int16, count=frame.samples * CHANNELS).reshape(-1, CHANNELS)


def as_samples(frame: av.AudioFrame, resampler: av.AudioResampler | None) -> tuple[np.ndarray, av.AudioResampler | None]:
    """``frame`` as (n, 2) int16 samples at 48 kHz; the resampler made for a source in another format."""
    if _is_speaker_format(frame):
        return _samples_of(frame), resampler
    resampler = resampler or av.AudioResampler(format="s16", layout=LAYOUT, rate=RATE)
    parts = [out.to_ndarray().reshape(-1, CHANNELS) for out in resampler.resample(frame)]
    return (np.concatenate(parts) if parts else np.zeros((0, CHANNELS), np.int16)), resampler


class SpeakerMix(MediaStreamTrack):
    """The clerk's audio track (``leader``), with each :meth:`add`-ed guest's voice mixed in."""

    kind = "audio"

    def __init__(self, leader: MediaStreamTrack) -> None:
        super().__init__()
        self.leader = leader
        self._voices: dict[str, _Voice] = {}
        self._leader_resampler: av.AudioResampler | None = None  # for a clerk's voice in another format
        self.mixed_frames = 0  # frames that carried a guest's voice, for tests and the log

    def add(self, key: str, track: MediaStreamTrack, receiver=None) -> None:
        """Mix ``track`` (a guest's voice) in from now on, replacing an earlier one of ``key``.
        ``receiver``: the track's RTCRtpReceiver, whose packets are then decoded here."""
        self.remove(key)
        voice = _Voice(track)
        if receiver is not None and tap_encoded_frames(receiver, voice.decode):
            voice.receiver = receiver
        voice.task = asyncio.get_running_loop().create_task(self._listen(key, voice), name=f"mix-{key}")
        self._voices[key] = voice

    def remove(self, key: str) -> None:
        voice = self._voices.pop(key, None)
        if voice is None:
            return
        if voice.task is not None:
            voice.task.cancel()
        if voice.receiver is not None:
            untap_encoded_frames(voice.receiver)
            voice.receiver = None

    @property
    def guests(self) -> list[str]:
        return list(self._voices)

    async def _listen(self, key: str, voice: _Voice) -> None:
        try:
            while True:  # with the receiver tapped, only the end comes this way (or a frame decoded before)
                frame = await voice.track.recv()
                samples, voice.resampler = as_samples(frame, voice.resampler)
                voice.add(samples)
        except MediaStreamError:
            pass  # the guest left; their peer connection closed
        finally:
            if self._voices.get(key) is voice:
                del self._voices[key]

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        frame = await self.leader.recv()
        guests = [voice for voice in self._voices.values() if voice.samples]
        if not guests:
            return frame  # nobody else speaks (or no guest at all): the clerk's frame as it came
        # Every 20 ms, so cheaply: the clerk's frame (as aiortc's Opus decoder gives it) takes the mix in place.
        in_place = _is_speaker_format(frame)
        if in_place:
            samples = _samples_of(frame)
        else:
            samples, self._leader_resampler = as_samples(frame, self._leader_resampler)
        total = samples.astype(np.int32)
        for voice in guests:
            voice.mix_into(total)
        np.minimum(total, 32767, out=total)
        np.maximum(total, -32768, out=total)
        self.mixed_frames += 1
        if in_place:
            np.copyto(samples, total, casting="unsafe")  # within int16's range now
            return frame
        mixed = av.AudioFrame.from_ndarray(total.astype(np.int16).reshape(1, -1), format="s16", layout=LAYOUT)
        mixed.sample_rate = RATE
        mixed.pts = None if frame.pts is None or frame.time_base is None else int(frame.pts * frame.time_base * RATE)
        mixed.time_base = TIME_BASE
        return mixed

    def stop(self) -> None:
        if self.readyState == "live":
            super().stop()
        for key in list(self._voices):
            self.remove(key)
