"""The USB camera end to end above the kernel: recorded webcam listings, streams made in memory
(``appliance.hardware.fake.usb_camera``) where the device's buffers would be."""
import asyncio
import ctypes
import struct
from pathlib import Path

import av
import numpy as np
import pytest
from aiortc.mediastreams import MediaStreamError

from appliance.hardware.errors import CameraError
from appliance.hardware.fake.usb_camera import FakeCapture, encode_stream, pictures
from appliance.hardware.interfaces import Camera
from appliance.hardware.pi.v4l2 import ioctls
from appliance.hardware.pi.v4l2.camera import UsbCamera
from appliance.hardware.pi.v4l2.choose import Wanted
from appliance.hardware.pi.v4l2.devices import parse_listing
from appliance.hardware.pi.v4l2.h264 import NAL_IDR, NAL_PPS, NAL_SPS, SequenceHeaders, nal_type, nal_units

DATA = Path(__file__).parent / "data" / "v4l2"
PATH = "/dev/v4l/by-id/usb-test-camera-video-index0"


class Rig:
    """A camera as listed in ``listing``, whose captures replay streams made from test pictures."""

    def __init__(self, listing: str, *, headers_once: bool = False, seconds: float = 1.2, path: str = PATH,
                 **camera) -> None:
        self.device = parse_listing((DATA / f"{listing}.txt").read_text(), path)
        self.plugged = True
        self.headers_once, self.seconds = headers_once, seconds
        self.captures: list[FakeCapture] = []
        self.sources: dict[str, list[av.VideoFrame]] = {}
        self.camera = UsbCamera(camera.pop("wanted", Wanted()), lister=self.list, opener=self.open, **camera)

    def list(self, paths):
        return [self.device] if self.plugged else []

    def open(self, path, mode):
        self.sources[mode.fourcc] = frames = pictures(mode.width, mode.height, round(self.seconds * mode.fps))
        capture = FakeCapture(path, mode, encode_stream(frames, mode, headers_once=self.headers_once))
        self.captures.append(capture)
        return capture


async def test_a_camera_with_h264_passes_it_through_with_headers_before_every_idr():
    rig = Rig("logitech-c920-h264", headers_once=True, wanted=Wanted(width=640, height=480, fps=30))
    camera = rig.camera
    assert isinstance(camera, Camera)
    track = camera.track()
    assert camera.encoded and camera.name == "USB HD Pro Webcam C920 (H.264 640x480 30 fps)"
    assert rig.captures[0].bitrate == 1_500_000  # passed through, it cannot follow the clerk's bandwidth
    packets = [await asyncio.wait_for(track.recv(), 3) for _ in range(35)]
    track.stop()
    assert all(isinstance(p, av.Packet) and str(p.time_base) == "1/90000" for p in packets)
    keyframes = [i for i, p in enumerate(packets) if p.is_keyframe]
    assert keyframes == [0, 30]  # an IDR every second, as the stream has them
    # The camera sent SPS/PPS only at the start; the second IDR got them put in front.
    second = [nal_type(u) for u in nal_units(bytes(packets[30]))]
    assert second[:2] == [NAL_SPS, NAL_PPS] and NAL_IDR in second
    # A receiver that starts there (it joined late or lost a packet) decodes the picture.
    decoder = av.CodecContext.create("h264", "r")
    decoded = [f for p in packets[30:] for f in decoder.decode(av.Packet(bytes(p)))]
    assert decoded and (decoded[0].width, decoded[0].height) == (640, 480)
    assert packets[-1].pts - packets[30].pts == pytest.approx(4 * 3000, abs=1500)  # 4 frames at 30 fps
    camera.close()


async def test_frames_from_mjpeg_come_decoded_at_the_software_rate():
    rig = Rig("cheap-mjpeg-only")
    track = rig.camera.track()
    assert not rig.camera.encoded and rig.camera.name == "USB USB 2.0 Camera: HD USB Camera (MJPEG 640x360 15 fps)"
    frames = [await asyncio.wait_for(track.recv(), 3) for _ in range(6)]
    rig.camera.close()
    assert all(isinstance(f, av.VideoFrame) and (f.width, f.height) == (640, 360) for f in frames)
    steps = np.diff([f.pts for f in frames])
    assert 4000 < np.median(steps) < 8000  # 15 fps (6000 ticks) from a 30 fps camera
    # The picture is the camera's: the JPEG's luma close to what went in.
    sent = rig.sources["MJPG"]
    luma = frames[0].reformat(format="gray").to_ndarray().astype(int)
    best = min(np.abs(luma - s.reformat(format="gray").to_ndarray().astype(int)).mean() for s in sent)
    assert best < 6


async def test_raw_frames_from_a_camera_without_h264_even_when_packets_are_preferred():
    rig = Rig("logitech-c270")
    track = rig.camera.track(encoded=None)
    frame = await asyncio.wait_for(track.recv(), 3)
    assert not rig.camera.encoded and frame.format.name == "yuyv422" and (frame.width, frame.height) == (640, 360)
    sent = [s.reformat(format="gray").to_ndarray() for s in rig.sources["YUYV"]]
    assert any(np.array_equal(frame.reformat(format="gray").to_ndarray(), s) for s in sent)
    with pytest.raises(CameraError, match="offers no H.264"):
        rig.camera.track(encoded=True)
    rig.camera.close()


async def test_the_clerk_without_h264_gets_frames_from_an_h264_camera():
    rig = Rig("logitech-c920-h264")
    assert rig.camera.encoded  # its preference
    track = rig.camera.track(encoded=False)
    frame = await asyncio.wait_for(track.recv(), 3)
    assert not rig.camera.encoded and isinstance(frame, av.VideoFrame)
    assert rig.camera.name == "USB HD Pro Webcam C920 (raw YUYV 640x360 15 fps)"
    second = rig.camera.track()  # the next call's clerk takes H.264 again; the old track ended
    assert track.readyState == "ended" and rig.captures[0].closed
    assert isinstance(await asyncio.wait_for(second.recv(), 3), av.Packet)
    rig.camera.close()


async def test_an_unplugged_camera_ends_its_track_with_camera_error_and_works_again_when_back():
    rig = Rig("logitech-c270")
    track = rig.camera.track()
    await asyncio.wait_for(track.recv(), 3)
    rig.captures[-1].unplug()
    with pytest.raises(CameraError, match="disconnected.*USB cable") as stopped:
        for _ in range(10):
            await asyncio.wait_for(track.recv(), 3)
    assert isinstance(stopped.value, MediaStreamError)  # what aiortc and the self-test wait for at a track's end
    again = rig.camera.track()  # plugged in again: the next call opens it anew
    assert isinstance(await asyncio.wait_for(again.recv(), 3), av.VideoFrame)
    rig.camera.close()
    assert all(c.closed for c in rig.captures)


async def test_a_camera_that_sends_no_keyframes_is_restarted():
    rig = Rig("logitech-c920-h264", wanted=Wanted(width=640, height=480, fps=30), keyframe_deadline_s=0.5)
    track = rig.camera.track()
    capture = rig.captures[0]
    idr = capture._stream[0]
    capture._stream = [idr] + [au for au in capture._stream[1:] if NAL_IDR not in map(nal_type, nal_units(au))]
    for _ in range(40):
        await asyncio.wait_for(track.recv(), 3)
    assert capture.restarts >= 1
    rig.camera.close()


async def test_between_calls_the_camera_tells_whether_it_is_plugged_in(tmp_path):
    node = tmp_path / "video0"  # stands in for the device node, which goes when the camera is pulled out
    node.touch()
    rig = Rig("logitech-c270", path=str(node))
    assert rig.camera.present()
    node.unlink()
    rig.plugged = False
    assert not rig.camera.present()
    with pytest.raises(CameraError, match="no usable USB camera"):
        rig.camera.track()
    node.touch()
    rig.plugged = True
    assert rig.camera.present()
    track = rig.camera.track()
    assert isinstance(await asyncio.wait_for(track.recv(), 3), av.VideoFrame)
    rig.camera.close()


def test_a_configured_camera_that_is_not_there_says_what_to_check():
    with pytest.raises(CameraError, match="not there: check the USB cable"):
        UsbCamera(Wanted(), "/dev/v4l/by-id/usb-nothing-here-video-index0", lister=lambda paths: [])


def test_sequence_headers_wait_for_a_decodable_keyframe():
    sps, pps, idr, p = b"\x67\x42\x00\x1f", b"\x68\xce\x3c\x80", b"\x65\x88\x84", b"\x41\x9a\x02"
    au = lambda *units: b"".join(b"\x00\x00\x00\x01" + u for u in units)  # noqa: E731
    headers = SequenceHeaders()
    assert headers.process(au(idr)) == (au(idr), False)  # no SPS/PPS seen yet: undecodable
    assert headers.process(au(sps, pps, idr)) == (au(sps, pps, idr), True)
    assert headers.process(au(p)) == (au(p), False)
    assert headers.process(au(idr)) == (au(sps, pps, idr), True) and headers.inserted == 1
    assert nal_units(b"\x00\x00\x01" + sps + b"\x00\x00\x00\x01" + pps) == [sps, pps]


@pytest.mark.skipif(struct.calcsize("P") != 8, reason="the layouts checked are a 64-bit kernel's (arm64, x86_64)")
def test_the_ioctl_structures_have_the_kernels_layout():
    # Sizes and request numbers as linux/videodev2.h gives them on arm64 and x86_64.
    sizes = {ioctls.Capability: 104, ioctls.FmtDesc: 64, ioctls.FrmSizeEnum: 44, ioctls.FrmIvalEnum: 52,
             ioctls.Format: 208, ioctls.StreamParm: 204, ioctls.RequestBuffers: 20, ioctls.Buffer: 88,
             ioctls.QueryCtrl: 68, ioctls.Control: 8}
    assert {cls.__name__: ctypes.sizeof(cls) for cls in sizes} == {cls.__name__: n for cls, n in sizes.items()}
    assert ioctls.Buffer.m.offset == 64 and ioctls.Buffer.sequence.offset == 56
    assert (ioctls.VIDIOC_QUERYCAP, ioctls.VIDIOC_S_FMT, ioctls.VIDIOC_DQBUF, ioctls.VIDIOC_STREAMON,
            ioctls.VIDIOC_S_PARM, ioctls.VIDIOC_ENUM_FRAMEINTERVALS) == \
        (0x80685600, 0xC0D05605, 0xC0585611, 0x40045612, 0xC0CC5616, 0xC034564B)
    assert ioctls.fourcc_text(ioctls.fourcc_code("MJPG")) == "MJPG" and ioctls.fourcc_code("H264") == 0x34363248


async def test_vp8_from_mjpeg_frames_is_not_all_keyframes():
    # A decoded JPEG is an I picture; passed on as such, every VP8 frame would be a keyframe (5x the bitrate).
    from aiortc.codecs import get_encoder
    from aiortc.codecs.vpx import VpxPayloadDescriptor
    from aiortc.rtcrtpparameters import RTCRtpCodecParameters

    rig = Rig("cheap-mjpeg-only")
    track = rig.camera.track()
    encoder = get_encoder(RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000))
    keyframes = []
    for _ in range(6):
        payloads, _ = encoder.encode(await asyncio.wait_for(track.recv(), 3))
        _, frame = VpxPayloadDescriptor.parse(payloads[0])
        keyframes.append(frame[0] & 1 == 0)  # VP8 frame tag: bit 0 clear on a keyframe (RFC 6386 9.1)
    rig.camera.close()
    assert keyframes == [True] + [False] * 5


async def test_a_kiosk_started_without_its_webcam_shows_it_missing_until_it_is_plugged_in():
    device = parse_listing((DATA / "logitech-c270.txt").read_text(), "/dev/video0")
    plugged: list = []
    made = {}

    def open_capture(path, mode):
        made["capture"] = FakeCapture(path, mode, encode_stream(pictures(mode.width, mode.height, 4), mode))
        return made["capture"]

    camera = UsbCamera(Wanted(), lister=lambda paths: list(plugged), opener=open_capture, missing_ok=True)
    assert not camera.present() and camera.name == "USB camera (none found)"
    with pytest.raises(CameraError, match="no usable USB camera found .*no video devices at all"):
        camera.track()
    plugged.append(device)
    assert camera.present() and camera.name == "USB UVC Camera (046d:0825) (raw YUYV 640x360 15 fps)"
    assert isinstance(await asyncio.wait_for(camera.track().recv(), 3), av.VideoFrame)
    camera.close()
