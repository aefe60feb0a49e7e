"""The ``fake`` hardware backend: test pattern, synthetic tone, in-memory speaker, mock button.

Everything runs on any Linux laptop.  ``FakeCamera(encoded=True)`` runs the Pi 4
passthrough path (pre-encoded H.264 through ``EncodedVideoTrack``) with a
software stand-in for the hardware encoder.
"""
from __future__ import annotations

import asyncio
import collections
import logging

import av
import numpy as np
from aiortc.mediastreams import MediaStreamTrack

from appliance.hardware.encoded import EncodedVideoTrack, TrackOutput
from appliance.hardware.errors import AudioDeviceError, CameraError, DeviceStateError, HardwareError
from appliance.hardware.fake.breakage import BreakableTrack, Breakage
from appliance.hardware.fake.button import MockCallButton
from appliance.hardware.fake.camera import TestPatternTrack
from appliance.hardware.fake.display import open_display  # noqa: F401  (open_hardware finds every opener here)
from appliance.hardware.fake.h264_encoder import FakeH264Encoder
from appliance.hardware.fake.held_code import HeldCode
from appliance.hardware.fake.microphone import SyntheticMicrophoneTrack
from appliance.hardware.fake.room import Room
from appliance.hardware.fake.unit import open_unit  # noqa: F401  (open_hardware finds every opener here)
from appliance.hardware.gain import gain_factor, volume_factor
from appliance.hardware.interfaces import LONG_PRESS_SECONDS, SELFTEST_HOLD_SECONDS, FarEndHook
from appliance.hardware.resample import RATE, PlaybackResampler

log = logging.getLogger(__name__)

PLAYED_SECONDS = 10  # what MemorySpeaker keeps for tests to inspect; never written anywhere


class FakeCamera:
    """Test pattern camera; ``encoded=True`` pre-encodes it to H.264 like a Pi 4.

    ``encoded`` given here is the camera's preference (``track()``); ``track(encoded=False)``
    gives frames also then (the VP8 fallback), ``track(encoded=True)`` packets also when the
    preference is frames. The attribute tells what the last track yields.
    ``fail()`` / ``fail(after_frames=n)`` / ``repair()``, ``unplug()`` / ``plug()``: see :class:`Breakage`.
    ``held.hold(text)``: a card with that QR code is held up to the camera (frames path only; see
    appliance/hardware/fake/held_code.py); ``held.hold(None)`` takes it away.
    ``fill``: the H.264 stream takes its whole bitrate, as a camera's picture of a person does (the test
    pattern alone takes a tenth); see :class:`FakeH264Encoder`. ``grain``: the frames carry noise of up to that
    many luma steps, so that an encoder of them (VP8) needs its whole bitrate too (:class:`TestPatternTrack`).
    """

    name = "test pattern"

    def __init__(self, width: int = 640, height: int = 480, fps: int = 30, bitrate: int = 1_000_000, *,
                 encoded: bool = False, fill: bool = False, grain: int = 0) -> None:
        self.width, self.height, self.fps, self.bitrate = width, height, fps, bitrate
        self.fill, self.grain = fill, grain
        self.encoded = self.prefers_encoded = encoded
        self._track: MediaStreamTrack | None = None
        self._encoder: FakeH264Encoder | None = None
        self._outer: MediaStreamTrack | None = None
        self.breakage = Breakage("camera", CameraError)
        self.fail, self.repair = self.breakage.fail, self.breakage.repair
        self.unplug, self.plug, self.present = self.breakage.unplug, self.breakage.plug, self.breakage.present
        self.held = HeldCode()

    def track(self, *, encoded: bool | None = None) -> MediaStreamTrack:
        self._stop()
        self.breakage.check_start()
        self.encoded = self.prefers_encoded if encoded is None else encoded
        self._outer = BreakableTrack(self._start(), self.breakage)
        return self._outer

    def _start(self) -> MediaStreamTrack:
        if not self.encoded:
            self._track = TestPatternTrack(self.width, self.height, fps=self.fps, held=self.held, grain=self.grain)
            return self._track
        track = EncodedVideoTrack(on_stop=self._stop)
        encoder = FakeH264Encoder(bitrate=self.bitrate, repeat=True, iperiod=self.fps, framerate=self.fps,
                                  profile="baseline", fill=self.fill)
        encoder.output = TrackOutput(track)
        encoder.width, encoder.height = self.width, self.height
        encoder.start()
        track.on_keyframe_request = encoder.request_keyframe
        track.on_bitrate_request = encoder.set_bitrate
        track.max_bitrate = track.bitrate = self.bitrate
        self._track, self._encoder = track, encoder
        return track

    def _stop(self) -> None:
        track, encoder, outer = self._track, self._encoder, self._outer
        self._track = self._encoder = self._outer = None
        if outer is not None:
            outer.stop()
        if encoder is not None:
            encoder.stop()
        if track is not None:
            track.stop()

    def close(self) -> None:
        self._stop()


class FakeMicrophone:
    """A pulsing tone instead of the USB microphone; it also hears its :class:`Room`.

    ``hear`` is the fake speaker's far-end hook (the fake backend connects them), so a
    tone played on the fake speaker comes back through this microphone.
    ``fail()`` / ``fail(after_frames=n)`` / ``repair()``, ``unplug()`` / ``plug()``: see :class:`Breakage`.
    """

    name = "synthetic tone"

    def __init__(self, frequency: float = 440.0) -> None:
        self.frequency = frequency
        self.gain_db = 0  # from central's settings; recorded only, so the self-test's tone loop stays predictable
        self.room = Room()
        self.hear = self.room.hear
        self._track: MediaStreamTrack | None = None
        self.breakage = Breakage("microphone", AudioDeviceError)
        self.fail, self.repair = self.breakage.fail, self.breakage.repair
        self.unplug, self.plug, self.present = self.breakage.unplug, self.breakage.plug, self.breakage.present

    def track(self) -> MediaStreamTrack:
        if self._track is not None:
            self._track.stop()
            self._track = None
        self.breakage.check_start()
        self._track = BreakableTrack(SyntheticMicrophoneTrack(self.frequency, room=self.room), self.breakage)
        return self._track

    def set_gain_db(self, gain_db: int) -> None:
        gain_factor(gain_db)  # refuses what a real microphone would refuse
        self.gain_db = gain_db

    def close(self) -> None:
        if self._track is not None:
            self._track.stop()
            self._track = None


class MemorySpeaker:
    """A speaker that keeps the last seconds of what it played, in memory only.

    ``fail()`` makes ``play`` raise as a real sound card that went away; ``repair()`` undoes it.
    ``unplug()`` / ``plug()``: the USB speaker pulled out (it fails and ``present()`` is false) and put back.
    """

    name = "memory"

    def __init__(self, *, far_end: FarEndHook | None = None) -> None:
        self.far_end = far_end
        self.broken = False
        self.plugged_in = True
        self.volume_pct = 100  # from central's settings; recorded only (see FakeMicrophone.gain_db)
        self.frames_played = 0
        self._resample = PlaybackResampler()
        self._recent: collections.deque[np.ndarray] = collections.deque()
        self._recent_samples = 0
        self._closed = False

    async def play(self, frame: av.AudioFrame) -> None:
        if self._closed:
            raise DeviceStateError("MemorySpeaker is closed")
        if self.broken:
            raise AudioDeviceError("fake speaker told to fail: it takes no sound")
        for out in self._resample(frame):
            if self.far_end is not None:
                self.far_end(out)
            samples = out.to_ndarray().reshape(-1)
            self._recent.append(samples)
            self._recent_samples += samples.size
            self.frames_played += samples.size
            while self._recent_samples - self._recent[0].size >= PLAYED_SECONDS * RATE:
                self._recent_samples -= self._recent.popleft().size
        await asyncio.sleep(0)  # a real device takes time; at least let others run

    def set_volume(self, volume_pct: int) -> None:
        volume_factor(volume_pct)
        if self.broken:
            raise AudioDeviceError("fake speaker told to fail: its volume cannot be set")
        self.volume_pct = volume_pct

    def fail(self) -> None:
        self.broken = True

    def repair(self) -> None:
        self.broken = False

    def unplug(self) -> None:
        self.plugged_in, self.broken = False, True

    def plug(self) -> None:
        self.plugged_in, self.broken = True, False

    def present(self) -> bool:
        return self.plugged_in

    def played(self) -> np.ndarray:
        """The most recent audio played (48 kHz mono s16), up to ``PLAYED_SECONDS``."""
        return np.concatenate(self._recent) if self._recent else np.zeros(0, np.int16)

    def close(self) -> None:
        self._closed = True
        self._recent.clear()
        self._recent_samples = 0


def _broken(device, cfg: dict):
    """``fail = true`` (the device does not work at all) or ``fail_after_frames = n`` (it stops mid-stream):
    how the demo and a boot test show a unit with a broken device."""
    if cfg.get("fail"):
        device.fail()
    elif "fail_after_frames" in cfg:
        device.fail(after_frames=int(cfg["fail_after_frames"]))
    return device


def open_camera(cfg: dict) -> FakeCamera:
    """``holds_file``: while that file holds text, the camera shows it as a QR code held up (the demo)."""
    camera = FakeCamera(cfg.get("width", 640), cfg.get("height", 480), cfg.get("fps", 30),
                        cfg.get("bitrate", 1_000_000), encoded=bool(cfg.get("encoded", False)))
    if cfg.get("holds_file"):
        camera.held.follow(cfg["holds_file"])
    return _broken(camera, cfg)


def open_microphone(cfg: dict, echo=None) -> FakeMicrophone:
    if echo is not None:
        raise HardwareError("echo cancellation applies to a real microphone; the fake one hears no speaker")
    return _broken(FakeMicrophone(cfg.get("frequency", 440.0)), cfg)


def open_speaker(cfg: dict, far_end: FarEndHook | None = None) -> MemorySpeaker:
    return _broken(MemorySpeaker(far_end=far_end), cfg)


def open_button(cfg: dict, loop: asyncio.AbstractEventLoop | None = None) -> MockCallButton:
    return _broken(MockCallButton(cfg.get("pin", 17), cfg.get("led_pin", 18), loop=loop,
                                  long_press_s=cfg.get("long_press_s", LONG_PRESS_SECONDS),
                                  selftest_hold_s=cfg.get("selftest_hold_s", SELFTEST_HOLD_SECONDS)), cfg)
