"""The kiosk's reorder buffer for the clerk's audio: a packet in order leaves at once, swapped packets come out
in order, a lost one is given up after a few and leaves no lasting delay behind."""
from __future__ import annotations

import asyncio

from aiortc.rtp import RtpPacket

from appliance.call.audio_buffer import (
    DECODE_BACKLOG,
    DECODER_QUEUE,
    PLAY_BACKLOG,
    RECEIVER_ATTRIBUTE,
    AudioReorderBuffer,
    DecodeBacklog,
    PlayBacklog,
    bound_playback,
    decode_skipped,
    use_for_audio,
)
from tests.appliance.kiosk_audio import kiosk_peer, warning_when_declined

START = 65530  # near the wrap of the 16-bit sequence number


def packet(n: int) -> RtpPacket:
    p = RtpPacket(payload_type=111, sequence_number=(START + n) % 65536, timestamp=(n * 960) % 2**32)
    p._data = f"opus {n}".encode()  # what aiortc's receiver sets after depayloading
    return p


def feed(buffer: AudioReorderBuffer, order: list[int]) -> list[tuple[int, int | None]]:
    """(packet added, packet handed out or None) for each added packet."""
    out = []
    for n in order:
        _, frame = buffer.add(packet(n))
        out.append((n, None if frame is None else int(frame.data.split()[1])))
    return out


def test_a_packet_in_order_leaves_at_once():
    assert feed(AudioReorderBuffer(), list(range(8))) == [(n, n) for n in range(8)]


def test_swapped_packets_come_out_in_order():
    buffer = AudioReorderBuffer()
    steps = feed(buffer, [0, 1, 3, 2, 4, 5])
    assert steps[:4] == [(0, 0), (1, 1), (3, None), (2, 2)]  # 3 waits for 2
    assert [f for _, f in steps] == [0, 1, None, 2, 3, 4]  # and then one packet waits, as in aiortc's buffer
    assert buffer.dropped == 0


def test_a_lost_packet_is_given_up_and_leaves_no_lasting_delay():
    buffer = AudioReorderBuffer()
    steps = feed(buffer, [0, 1, 2] + list(range(4, 20)))  # packet 3 never arrives
    handed = [f for _, f in steps if f is not None]
    assert 3 not in handed and handed == sorted(handed)
    # At most one packet more behind the newest than before the loss (aiortc's own: 15 more, for good).
    assert steps[-4:] == [(16, 15), (17, 16), (18, 17), (19, 18)]
    # Waiting for the lost packet holds at most the next three back.
    assert [f for n, f in steps if n in (4, 5, 6)] == [None, None, None]
    assert all(f is not None for n, f in steps if n >= 7)


def test_every_audio_receiver_of_the_kiosks_peer_uses_it():
    """Also the check that the installed aiortc still keeps its buffer where use_for_audio replaces it."""
    async def run():
        async with kiosk_peer() as peer:
            return [(t.kind, getattr(t.receiver, RECEIVER_ATTRIBUTE)) for t in peer.pc.getTransceivers()]
    kinds = asyncio.run(run())
    assert [type(b) is AudioReorderBuffer for kind, b in kinds if kind == "audio"] == [True]

    async def decoder_queues():
        async with kiosk_peer() as peer:
            return [type(getattr(t.receiver, DECODER_QUEUE)) for t in peer.pc.getTransceivers() if t.kind == "audio"]
    assert asyncio.run(decoder_queues()) == [DecodeBacklog]
    assert not any(isinstance(b, AudioReorderBuffer) for kind, b in kinds if kind == "video")


def test_a_receiver_built_otherwise_keeps_its_own_buffer_and_says_so(caplog):
    assert "80 ms" in warning_when_declined(use_for_audio, caplog)


def test_a_decoder_that_falls_behind_skips_the_oldest_packets_and_says_so_once(caplog):
    backlog = DecodeBacklog()
    for n in range(DECODE_BACKLOG + 7):  # the decoder thread takes none meanwhile
        backlog.put(("opus", n))
    backlog.put(None)  # the receiver stops: the thread must still get the signal
    waiting = [backlog.get_nowait() for _ in range(backlog.qsize())]
    assert waiting == [("opus", n) for n in range(7, DECODE_BACKLOG + 7)] + [None]  # the newest, in order
    assert backlog.skipped == 7
    said = [r.getMessage() for r in caplog.records if "decoded more slowly" in r.getMessage()]
    assert len(said) == 1 and "100 ms" in said[0]

    class Receiver:
        pass
    receiver = Receiver()
    setattr(receiver, DECODER_QUEUE, backlog)
    assert decode_skipped(receiver) == 7 and decode_skipped(Receiver()) == 0


def test_frames_the_speaker_cannot_take_in_time_are_skipped_oldest_first(caplog):
    from aiortc.rtcrtpreceiver import RemoteStreamTrack

    async def run():
        track = RemoteStreamTrack(kind="audio")
        assert bound_playback(track) and isinstance(track._queue, PlayBacklog)
        assert not bound_playback(RemoteStreamTrack(kind="video"))
        for n in range(PLAY_BACKLOG + 4):  # the decoder hands them over; the speaker takes none meanwhile
            await track._queue.put(n)
        await track._queue.put(None)  # the end of the track still arrives
        return [await track._queue.get() for _ in range(track._queue.qsize())], track._queue.skipped
    frames, skipped = asyncio.run(run())
    assert frames == list(range(4, PLAY_BACKLOG + 4)) + [None] and skipped == 4
    said = [r.getMessage() for r in caplog.records if "plays the clerk's voice more slowly" in r.getMessage()]
    assert len(said) == 1 and "200 ms" in said[0]
