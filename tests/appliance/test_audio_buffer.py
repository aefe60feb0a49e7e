"""The kiosk's reorder buffer for the clerk's audio: a packet leaves once the next one is in, swapped packets
come out in order, a lost one is given up after a few and leaves no lasting delay behind."""
from __future__ import annotations

import logging

from aiortc.rtp import RtpPacket

from appliance.call.audio_buffer import RECEIVER_ATTRIBUTE, AudioReorderBuffer, use_for_audio
from appliance.call.peer import CallPeer
from appliance.hardware.fake.camera import TestPatternTrack
from appliance.hardware.fake.microphone import SyntheticMicrophoneTrack

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


def test_a_packet_leaves_once_the_next_one_is_in():
    assert feed(AudioReorderBuffer(), list(range(8))) == [(0, None)] + [(n, n - 1) for n in range(1, 8)]


def test_swapped_packets_come_out_in_order():
    buffer = AudioReorderBuffer()
    handed = [f for _, f in feed(buffer, [0, 1, 3, 2, 4, 5])]
    assert [f for f in handed if f is not None] == [0, 1, 2, 3]
    assert buffer.dropped == 0


def test_a_lost_packet_is_given_up_and_leaves_no_lasting_delay():
    buffer = AudioReorderBuffer()
    steps = feed(buffer, [0, 1, 2] + list(range(4, 20)))  # packet 3 never arrives
    handed = [f for _, f in steps if f is not None]
    assert 3 not in handed and handed == sorted(handed)
    # At most one packet more behind the newest than before the loss (aiortc's own: 15 more, for good).
    assert steps[-4:] == [(16, 14), (17, 15), (18, 16), (19, 17)]
    # Waiting for the lost packet holds at most two later ones back.
    assert all(f is not None for n, f in steps if n >= 2 + 4)


def test_every_audio_receiver_of_the_kiosks_peer_uses_it():
    """Also the check that the installed aiortc still keeps its buffer where use_for_audio replaces it."""
    async def run():
        peer = CallPeer([], [TestPatternTrack(320, 240), SyntheticMicrophoneTrack()])
        try:
            return [(t.kind, getattr(t.receiver, RECEIVER_ATTRIBUTE)) for t in peer.pc.getTransceivers()]
        finally:
            await peer.close()
    import asyncio
    kinds = asyncio.run(run())
    assert [type(b) is AudioReorderBuffer for kind, b in kinds if kind == "audio"] == [True]
    assert not any(isinstance(b, AudioReorderBuffer) for kind, b in kinds if kind == "video")


def test_a_receiver_built_otherwise_keeps_its_own_buffer_and_says_so(caplog):
    class Elsewhere:
        pass
    with caplog.at_level(logging.WARNING):
        assert use_for_audio(Elsewhere()) is False
    assert "80 ms" in caplog.text
