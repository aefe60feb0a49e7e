"""The ALSA microphone and speaker on a real sound card: the kernel's loopback card ``snd-aloop``, wired
as in the boot test (image/build/selftest/devices/appliance.toml): the speaker plays into dmix on
hw:Loopback,0, the microphone reads dsnoop on hw:Loopback,1, where the card returns what was played.

Runs wherever snd-aloop is loaded (the QEMU image test loads it; on a machine without kernel modules
``tools/kernel-vm -- .venv/bin/python -m pytest tests/appliance/test_alsa_loopback.py`` boots a kernel
that has it); elsewhere it skips, saying so. With the pyalsaaudio at hand: 0.11 from PyPI here, 0.10 in
the image.
"""
import asyncio
import logging
import math

import av
import numpy as np
import pytest

pytest.importorskip("alsaaudio", reason="pyalsaaudio not installed (pip install pyalsaaudio)")

from appliance.hardware.pi import alsa_cards  # noqa: E402
from appliance.hardware.pi.audio import PERIOD, AlsaMicrophone, AlsaSpeaker  # noqa: E402
from appliance.selftest.speech import RATE, speech_like, with_peak  # noqa: E402

SPEAKER = "plug:'dmix:CARD=Loopback,DEV=0,FORMAT=S16_LE'"
MICROPHONE = "plug:'dsnoop:CARD=Loopback,DEV=1,FORMAT=S16_LE'"

pytestmark = pytest.mark.skipif(alsa_cards.find_card(SPEAKER) is None,
                                reason="no snd-aloop card on this machine (no Loopback in /proc/asound/cards; "
                                       "`modprobe snd-aloop` makes one; tools/kernel-vm runs these tests under a kernel with it)")


def dbfs(samples: np.ndarray) -> float:
    power = float(np.mean(samples.astype(np.float64) ** 2)) if samples.size else 0.0
    return 10 * math.log10(power / 32768.0 ** 2) if power > 0 else -math.inf


async def test_what_the_speaker_plays_comes_back_at_the_microphone(caplog):
    voice = np.round(with_peak(speech_like(4, seed=2), 0.25) * 32767).astype(np.int16)
    caplog.set_level(logging.INFO, logger="appliance.hardware.pi")
    speaker, microphone = AlsaSpeaker(SPEAKER), AlsaMicrophone(MICROPHONE)
    heard: list[np.ndarray] = []
    try:
        track = microphone.track()

        async def listen() -> None:
            while True:
                heard.append((await track.recv()).to_ndarray().reshape(-1).copy())

        listening = asyncio.create_task(listen())
        loop = asyncio.get_running_loop()
        started = loop.time()
        for i in range(0, voice.size, PERIOD):  # as the clerk's voice arrives: 20 ms at a time
            frame = av.AudioFrame.from_ndarray(voice[i:i + PERIOD].reshape(1, -1), format="s16", layout="mono")
            frame.sample_rate = RATE
            await speaker.play(frame)
            await asyncio.sleep(max(0.0, started + (i + PERIOD) / RATE - loop.time()))
        await asyncio.sleep(0.5)  # the cushion and the buffers empty
        listening.cancel()
    finally:
        microphone.close()
        speaker.close()
    recorded = np.concatenate(heard)
    assert microphone.error is None
    assert speaker.frames_played >= voice.size  # the voice and the silence ahead of it
    # The voice comes back at about the level played (-26 dBFS while it sounds); silence would be -inf.
    assert dbfs(recorded) > dbfs(voice) - 12
    # The journal says which period and buffer dmix and dsnoop gave (they impose their own periods).
    assert "ALSA playback \"plug:'dmix:CARD=Loopback" in caplog.text and "ALSA capture" in caplog.text
