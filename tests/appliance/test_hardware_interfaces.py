"""One body per device, run against every backend.

The fake backend always runs.  The pi backend runs wherever its hardware is
reachable: ALSA's software devices are everywhere, so its microphone and
speaker run here for real; its camera and GPIO skip, saying what is missing.
"""
import asyncio

import av
import numpy as np
import pytest

from appliance.hardware.errors import BackendUnavailable, CameraError, HardwareError, UnknownBackend
from appliance.hardware.interfaces import LED_MODES, CallButton, Camera, Microphone, Speaker
from appliance.hardware.select import Hardware, open_hardware

ALL_FAKE = {"backend": "fake"}
PI_SETTINGS = {
    "camera": {"width": 640, "height": 480, "fps": 30},
    "microphone": {"device": "null"},
    "speaker": {"device": "null"},
    "button": {"pin": 17, "led_pin": 18},
}


def config_for(device: str, backend: str, **extra) -> dict:
    """Everything fake except ``device``, which gets ``backend``."""
    section = dict(PI_SETTINGS[device]) if backend == "pi" else {}
    section.update(extra, backend=backend)
    return {**ALL_FAKE, device: section}


def open_or_skip(config: dict, what: str) -> Hardware:
    try:
        return open_hardware(config)
    except BackendUnavailable as exc:
        pytest.skip(f"{what} is absent on this machine: {exc}")
    except CameraError as exc:
        if "no camera" not in str(exc):
            raise
        pytest.skip(f"{what}: {exc}")


def open_camera_or_skip(config: dict) -> Hardware:
    """The pi backend's camera is the Pi camera or, without one, a V4L2 device (a webcam, vivid)."""
    hw = open_or_skip(config, "a camera: the Pi camera (picamera2 with python3-libcamera) or a V4L2 device")
    if not getattr(hw.camera, "present", lambda: True)():
        hw.close()
        pytest.skip(f"no camera on this machine: {hw.camera.name} (no Pi camera, no V4L2 device such as vivid)")
    return hw


@pytest.mark.parametrize("backend,encoded", [("fake", False), ("fake", True), ("pi", None)],
                         ids=["fake", "fake-h264", "pi"])
async def test_camera(backend, encoded):
    extra = {} if encoded is None else {"encoded": encoded}
    hw = open_camera_or_skip(config_for("camera", backend, **extra))
    try:
        camera = hw.camera
        assert isinstance(camera, Camera)
        first = camera.track()
        second = camera.track()  # a new call gets a new track; the old one ends
        assert first.readyState == "ended" and second.kind == "video"
        item = await asyncio.wait_for(second.recv(), 5)
        if camera.encoded:
            assert isinstance(item, av.Packet) and item.is_keyframe and bytes(item).startswith(b"\x00\x00")
        else:
            assert isinstance(item, av.VideoFrame) and item.width > 0
        assert str(item.time_base) == "1/90000"
        second.stop()
    finally:
        hw.close()
    hw.camera.close()  # twice is fine


@pytest.mark.parametrize("backend,encoded", [("fake", True), ("fake", False), ("pi", None)],
                         ids=["fake-h264", "fake", "pi"])
async def test_camera_gives_frames_or_packets_on_request(backend, encoded):
    """A clerk's browser without H.264 needs frames to encode VP8 from, also from an H.264 camera."""
    extra = {} if encoded is None else {"encoded": encoded}
    hw = open_camera_or_skip(config_for("camera", backend, **extra))
    try:
        camera = hw.camera
        frames = camera.track(encoded=False)
        assert not camera.encoded
        assert isinstance(await asyncio.wait_for(frames.recv(), 5), av.VideoFrame)
        try:
            packets = camera.track(encoded=True)
        except CameraError:  # a camera without an encoder says so
            assert backend == "pi"
        else:
            assert frames.readyState == "ended" and camera.encoded  # one track at a time
            item = await asyncio.wait_for(packets.recv(), 5)
            assert isinstance(item, av.Packet) and item.is_keyframe
            packets.stop()
    finally:
        hw.close()


@pytest.mark.parametrize("backend", ["fake", "pi"])
async def test_microphone(backend):
    hw = open_or_skip(config_for("microphone", backend), "ALSA (pyalsaaudio)")
    try:
        assert isinstance(hw.microphone, Microphone)
        assert (hw.echo is not None) == (backend == "pi")  # a real microphone gets echo cancellation
        track = hw.microphone.track()
        # The first frame: the pi microphone's own process may still be loading its echo canceller.
        frames = [await asyncio.wait_for(track.recv(), 30 if i == 0 else 2) for i in range(3)]
        for frame in frames:
            assert (frame.samples, frame.sample_rate, frame.format.name, frame.layout.name) == \
                (960, 48000, "s16", "mono")
        assert [f.pts for f in frames] == [0, 960, 1920]
    finally:
        hw.close()
    assert track.readyState == "ended"


@pytest.mark.parametrize("backend", ["fake", "pi"])
async def test_speaker(backend):
    hw = open_or_skip(config_for("speaker", backend), "ALSA (pyalsaaudio)")
    heard = []
    try:
        speaker = hw.speaker
        assert isinstance(speaker, Speaker)
        speaker.far_end = heard.append
        # The clerk's voice, steady and quiet enough to pass the limiter, so it can be told from silence.
        decoded = av.AudioFrame.from_ndarray(np.full((1, 1920), 1000, np.int16), format="s16", layout="stereo")
        decoded.sample_rate = 48000  # what aiortc's Opus decoder hands over
        for _ in range(3):
            await speaker.play(decoded)
    finally:
        hw.close()
    # The echo canceller's reference is exactly what was played, in the order it played: the clerk's three
    # frames whole and, on a real device, the silence the speaker keeps ahead of the clerk's voice
    # (cushion_ms): first, and again each time it tops the cushion up or the device ran dry, however often
    # that happened on a busy machine.
    reference = np.concatenate([f.to_ndarray().reshape(-1) for f in heard])
    voice = np.flatnonzero(reference)
    assert voice.size == 3 * 960
    if backend == "pi":
        assert reference.size == speaker.frames_played  # every sample the device took, nothing else
        assert voice[0] >= speaker.cushion  # the cushion came first
    else:
        assert reference.size == 3 * 960
    assert {(f.format.name, f.layout.name, f.sample_rate) for f in heard} == {("s16", "mono", 48000)}


@pytest.mark.parametrize("backend", ["fake", "pi"])
async def test_button(backend):
    hw = open_or_skip(config_for("button", backend), "the Pi's GPIO (gpiozero's lgpio pin factory on /dev/gpiochip*)")
    try:
        button = hw.button
        assert isinstance(button, CallButton)
        for mode in LED_MODES:
            button.led(mode)
        with pytest.raises(ValueError):
            button.led("party")
        if backend == "fake":  # only mock pins can be driven from a test
            pressed = asyncio.Event()
            button.on_short_press = pressed.set
            await button.press()
            await asyncio.wait_for(pressed.wait(), 1)
    finally:
        hw.close()


# --- choosing backends ----------------------------------------------------------

async def test_real_microphone_and_speaker_share_one_echo_canceller():
    hw = open_or_skip({**ALL_FAKE, "microphone": {"backend": "pi", "device": "null"},
                       "speaker": {"backend": "pi", "device": "null"}, "echo": {"delay_ms": 90}},
                      "ALSA (pyalsaaudio)")
    try:
        assert hw.echo is not None and hw.echo.delay_ms == 90
        assert hw.microphone.echo is hw.echo
        assert hw.speaker.far_end == hw.echo.far_end  # the canceller hears what is played
    finally:
        hw.close()
    off = open_hardware({**ALL_FAKE, "microphone": {"backend": "pi", "device": "null"}, "echo": {"enabled": False}})
    assert off.echo is None and off.microphone.echo is None
    off.close()


def test_unknown_or_missing_backend_is_a_clear_error():
    with pytest.raises(UnknownBackend, match="unknown hardware backend 'arduino' for camera"):
        open_hardware({"backend": "arduino"})
    with pytest.raises(ValueError, match="no hardware backend configured"):
        open_hardware({})


async def test_pi_backend_names_missing_settings():
    with pytest.raises(HardwareError, match=r"microphone\.device is missing"):
        open_hardware({**ALL_FAKE, "microphone": {"backend": "pi"}})


async def test_missing_pi_camera_stack_says_what_to_install():
    try:
        import picamera2  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("picamera2 imports here: this is a Pi, nothing is missing")
    with pytest.raises(BackendUnavailable, match="python3-picamera2.*python3-libcamera"):
        open_hardware(config_for("camera", "pi", source="picamera"))


async def test_all_fake_hardware_opens_and_closes():
    hw = open_hardware(ALL_FAKE)
    assert hw.echo is None and not hw.camera.encoded
    hw.close()
    hw.close()
