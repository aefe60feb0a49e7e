"""A USB speakerphone, microphone or speaker unplugged and plugged in again, as the ALSA microphone and
speaker (appliance/hardware/pi/audio.py) see it: the card leaves /proc/asound and every read or write of
its open handle fails with ALSAAudioError, as pyalsaaudio reports a removed device.

The sound card is a made-up /proc/asound and the PCM handles are stand-ins that fail like those of a
removed card; the same objects then run against ALSA's real devices in test_alsa_null.py.
"""
from __future__ import annotations

import asyncio
import threading

import av
import numpy as np
import pytest
from aiortc.mediastreams import MediaStreamError

from appliance.hardware.errors import AudioDeviceError

alsaaudio = pytest.importorskip("alsaaudio", reason="pyalsaaudio not installed (pip install pyalsaaudio)")

from appliance.hardware.pi import alsa_cards  # noqa: E402
from appliance.hardware.pi.audio import CUSHION, PERIOD, AlsaMicrophone, AlsaSpeaker  # noqa: E402

PI_CARDS = (" 0 [Headphones     ]: bcm2835_headpho - bcm2835 Headphones\n"
            "                      bcm2835 Headphones\n"
            " 1 [vc4hdmi0       ]: vc4-hdmi - vc4-hdmi-0\n"
            "                      vc4-hdmi-0\n")
SPEAKERPHONE = (" 2 [kioskaudio     ]: USB-Audio - Jabra SPEAK 410 USB\n"
                "                      Jabra SPEAK 410 USB at usb-0000:01:00.0-1.3, full speed\n")
DEVICE = "plughw:CARD=kioskaudio"


class SoundCards:
    """A made-up /proc/asound with the Pi's own cards and a USB speakerphone that can be pulled out."""

    def __init__(self, root):
        self.proc = root / "asound"
        self.proc.mkdir()
        self.plug()

    def plug(self):
        (self.proc / "cards").write_text(PI_CARDS + SPEAKERPHONE)

    def unplug(self):
        (self.proc / "cards").write_text(PI_CARDS)

    @property
    def plugged(self) -> bool:
        return "kioskaudio" in (self.proc / "cards").read_text()


class RemovablePcm:
    """A PCM handle whose reads and writes fail once its card is gone, and stay failed (like the kernel's)."""

    def __init__(self, cards: SoundCards):
        self.cards, self.spent = cards, False
        self.opened = threading.Event()

    def _check(self):
        if self.spent or not self.cards.plugged:
            self.spent = True
            raise alsaaudio.ALSAAudioError(f"No such device [{DEVICE}]")

    def read(self):
        self._check()
        threading.Event().wait(0.02)  # a sound card's clock: one period each 20 ms
        return PERIOD, np.full(PERIOD, 1000, np.int16).tobytes()

    def write(self, data: bytes) -> int:
        self._check()
        return len(data) // 2

    def close(self):
        pass


@pytest.fixture
def cards(tmp_path):
    return SoundCards(tmp_path)


@pytest.fixture
def open_pcm(cards):
    opened = []

    def open_(kind, device, periods):
        if not cards.plugged:
            raise AudioDeviceError(f"cannot open ALSA {kind} device {device!r}: No such device")
        opened.append(RemovablePcm(cards))
        return opened[-1]
    open_.opened = opened
    return open_


def frame() -> av.AudioFrame:
    out = av.AudioFrame.from_ndarray(np.zeros((1, 960), np.int16), format="s16", layout="mono")
    out.sample_rate = 48000
    return out


async def test_the_microphone_names_its_card_and_its_track_ends_when_unplugged(cards, open_pcm):
    mic = AlsaMicrophone(DEVICE, open_pcm=open_pcm, proc=cards.proc)
    try:
        assert mic.name == "USB speakerphone Jabra SPEAK 410 USB (plughw:CARD=kioskaudio)"
        track = mic.track()
        assert (await asyncio.wait_for(track.recv(), 2)).samples == PERIOD
        cards.unplug()
        assert not mic.present()
        with pytest.raises(MediaStreamError):
            async with asyncio.timeout(2):
                while True:
                    await track.recv()
        assert isinstance(mic.error, AudioDeviceError)
        assert "Jabra SPEAK 410 USB" in str(mic.error) and "unplugged" in str(mic.error)
        assert mic.name.startswith("USB speakerphone Jabra")  # still says what was there
        with pytest.raises(AudioDeviceError, match="No such device"):
            mic.track()  # not back yet
        cards.plug()
        assert mic.present()
        again = mic.track()  # the same object, a fresh handle
        assert (await asyncio.wait_for(again.recv(), 2)).samples == PERIOD
        assert mic.error is None
    finally:
        mic.close()


async def test_the_speaker_refuses_sound_when_unplugged_and_plays_again_once_back(cards, open_pcm):
    speaker = AlsaSpeaker(DEVICE, open_pcm=open_pcm, proc=cards.proc)
    try:
        await speaker.play(frame())
        assert speaker.frames_played == CUSHION + 960  # silence ahead of the first frame
        cards.unplug()
        with pytest.raises(AudioDeviceError, match="unplugged") as caught:
            await speaker.play(frame())
        assert "Jabra SPEAK 410 USB" in str(caught.value)
        assert not speaker.present()
        with pytest.raises(AudioDeviceError):
            speaker.reopen()
        cards.plug()
        speaker.reopen()
        await speaker.play(frame())
        assert speaker.frames_played == 2 * (CUSHION + 960)  # a fresh device: silence ahead again
        assert len(open_pcm.opened) == 2
    finally:
        speaker.close()


async def test_a_speaker_unplugged_at_start_up_is_taken_once_plugged_in(cards, open_pcm):
    cards.unplug()
    speaker = AlsaSpeaker(DEVICE, open_pcm=open_pcm, proc=cards.proc)  # the service still starts
    try:
        assert not speaker.present() and speaker.name == f"ALSA {DEVICE}"
        with pytest.raises(AudioDeviceError):
            await speaker.play(frame())
        cards.plug()
        await speaker.play(frame())  # opened on the way
        assert speaker.frames_played == CUSHION + 960 and speaker.name.startswith("USB speakerphone")
    finally:
        speaker.close()


def test_an_unplugged_card_is_named_in_the_error_with_what_to_do():
    # Real pyalsaaudio: no such card on this machine (nor kioskmic in a test guest).
    with pytest.raises(AudioDeviceError, match="no sound card 'kioskmic': plug the USB device in"):
        AlsaMicrophone("plughw:CARD=kioskmic", proc=alsa_cards.PROC_ASOUND / "nowhere").track()


@pytest.mark.parametrize(("device", "card"), [
    ("plughw:CARD=kioskaudio", "kioskaudio"), ("hw:CARD=kioskmic,DEV=0", "kioskmic"), ("plughw:1", "1"),
    ("sysdefault:kioskspeaker", "kioskspeaker"), ("default:CARD=vc4hdmi0", "vc4hdmi0"),
    ("plug:'dsnoop:CARD=Loopback,DEV=1,FORMAT=S16_LE'", "Loopback"),  # the boot test's microphone
    ("default", None), ("null", None), ("plug:dmix", None)])
def test_the_card_an_alsa_device_names(device, card):
    assert alsa_cards.card_of(device) == card


def test_cards_are_read_as_the_kernel_lists_them(cards):
    assert [(c.number, c.id, c.driver) for c in alsa_cards.cards(cards.proc)] == [
        (0, "Headphones", "bcm2835_headpho"), (1, "vc4hdmi0", "vc4-hdmi"), (2, "kioskaudio", "USB-Audio")]
    assert alsa_cards.describe("plughw:CARD=Headphones", cards.proc) == \
        "sound card bcm2835 Headphones (plughw:CARD=Headphones)"
    assert alsa_cards.describe("plughw:2", cards.proc).startswith("USB speakerphone Jabra")
    assert alsa_cards.present("default", cards.proc) and alsa_cards.describe("null", cards.proc) == "ALSA null"
    cards.unplug()
    assert not alsa_cards.present("plughw:CARD=kioskaudio", cards.proc)
    assert alsa_cards.describe("plughw:CARD=kioskaudio", cards.proc) is None
