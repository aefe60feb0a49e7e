"""The kiosk's voice is Opus-encoded in low-delay mode: a click comes out of the clerk's decoder 2.5 ms after it
went in (aiortc's own setting: 6.5 ms), and the kiosk's audio sender uses that encoder when the call has Opus."""
from __future__ import annotations

import asyncio
import fractions
import logging

import av
import numpy as np
from aiortc import RTCRtpCodecParameters
from aiortc.codecs.opus import OpusDecoder, OpusEncoder
from aiortc.jitterbuffer import JitterFrame

from appliance.call.audio_send import SENDER_ATTRIBUTE, LowDelayOpusEncoder, use_low_delay_opus
from tests.appliance.kiosk_audio import audio_transceiver, kiosk_peer, warning_when_declined

OPUS = RTCRtpCodecParameters(mimeType="audio/opus", clockRate=48000, channels=2, payloadType=111)
PCMU = RTCRtpCodecParameters(mimeType="audio/PCMU", clockRate=8000, channels=1, payloadType=0)


def click_delay_ms(encoder: OpusEncoder) -> float:
    """How much later a click's first loud sample comes out of the decoder than it went into ``encoder``."""
    sound = np.zeros(960 * 10)
    start = 960 * 5 + 100
    sound[start:start + 720] = 0.9 * np.sin(2 * np.pi * 1000 * np.arange(720) / 48000)
    decoder, out = OpusDecoder(), []
    for i in range(10):
        frame = av.AudioFrame.from_ndarray((sound[i * 960:(i + 1) * 960] * 32767).astype(np.int16).reshape(1, -1),
                                           format="s16", layout="mono")
        frame.sample_rate, frame.pts, frame.time_base = 48000, i * 960, fractions.Fraction(1, 48000)
        payloads, timestamp = encoder.encode(frame)
        for payload in payloads:
            out += [d.to_ndarray().reshape(-1, 2)[:, 0] for d in decoder.decode(JitterFrame(payload, timestamp))]
    heard = np.concatenate(out).astype(float) / 32768
    return (np.argmax(np.abs(heard) > 0.5) - np.argmax(np.abs(sound) > 0.5)) / 48


def test_low_delay_opus_looks_ahead_2_5_ms_instead_of_6_5():
    assert 2.0 <= click_delay_ms(LowDelayOpusEncoder()) <= 3.0
    assert 6.0 <= click_delay_ms(OpusEncoder()) <= 7.0  # what it replaces


def test_the_kiosks_audio_sender_encodes_opus_in_low_delay_mode_and_other_codecs_as_aiortc_does():
    async def first_encoder(codec):
        async with kiosk_peer() as peer:
            sender = audio_transceiver(peer).sender
            await sender._next_encoded_frame(codec)  # what aiortc does with the first microphone frame
            return getattr(sender, SENDER_ATTRIBUTE)
    opus = asyncio.run(first_encoder(OPUS))
    assert isinstance(opus, LowDelayOpusEncoder)
    assert not isinstance(asyncio.run(first_encoder(PCMU)), OpusEncoder)


def test_a_sender_built_otherwise_keeps_its_encoder_and_says_so(caplog):
    assert "6.5 ms" in warning_when_declined(use_low_delay_opus, caplog)


def test_an_aiortc_without_opus_options_keeps_its_own_encoder_and_still_sends(monkeypatch, caplog):
    """Debian trixie's aiortc (the image's) encodes Opus through libopus, with no ``codec`` to set the mode
    on: the sender must go on with aiortc's own encoder instead of failing the call's audio."""
    import appliance.call.audio_send as audio_send

    class OldOpusEncoder:
        def __init__(self) -> None:
            raise AttributeError("'LowDelayOpusEncoder' object has no attribute 'codec'")

    monkeypatch.setattr(audio_send, "LowDelayOpusEncoder", OldOpusEncoder)

    async def first_frame():
        async with kiosk_peer() as peer:
            sender = audio_transceiver(peer).sender
            frame = await sender._next_encoded_frame(OPUS)
            return frame, getattr(sender, SENDER_ATTRIBUTE)
    with caplog.at_level(logging.WARNING):
        frame, encoder = asyncio.run(first_frame())
    assert frame is not None and frame.payloads  # the voice goes out, encoded by aiortc's own Opus encoder
    assert isinstance(encoder, OpusEncoder) and not isinstance(encoder, OldOpusEncoder)
    assert "6.5 ms" in caplog.text
