"""USB camera: CPU seconds per minute of video for each way a webcam's picture reaches the call.

What is measured
----------------
The appliance's own USB camera path, in this process, from the device's buffers to the RTP
payloads, for three kinds of webcam:

* ``h264_passthrough``: the camera's own H.264 (as an older Logitech C920 sends it) passed
  through: ``UsbCamera`` -> ``EncodedVideoTrack`` -> aiortc's H.264 packetiser (``pack``);
* ``mjpeg_vp8``: MJPEG decoded with FFmpeg's decoder, then aiortc's VP8 encoder (the fallback
  for a clerk without H.264, and every call with a camera without H.264);
* ``raw_vp8``: YUYV frames wrapped, converted and VP8-encoded.

Only the ioctl read is replaced: ``FakeCapture`` (appliance/hardware/fake/usb_camera.py) hands
out, at the camera's pace, buffers made before the measurement from camera-like pictures
(texture, motion, sensor noise): libx264 baseline with an IDR a second, JPEGs of ~1 bit/pixel,
YUYV. The VP8 paths go through ``FallbackVideoTrack`` as in a call and the encoder runs at
aiortc's starting bitrate (500 kbit/s); SRTP, RTP and the network are not included (they cost
the same for every path and little). CPU is ``time.process_time()`` (all threads of this
process) over ``--usb-seconds`` of real-time video after a 1 s warm-up, scaled to a minute.
"""
from __future__ import annotations

import asyncio
import os
import platform
import time
from fractions import Fraction

from aiortc.codecs import get_encoder
from aiortc.codecs.h264 import H264Encoder
from aiortc.rtcrtpparameters import RTCRtpCodecParameters

from appliance.call.fallback import FallbackVideoTrack
from appliance.hardware.fake.usb_camera import FakeCapture, encode_stream, pictures
from appliance.hardware.pi.v4l2.camera import UsbCamera
from appliance.hardware.pi.v4l2.choose import Wanted
from appliance.hardware.pi.v4l2.devices import DeviceInfo, FrameSize, PixelFormat
from bench._common import BenchError, emit, note

NAME = "usb_camera"
MODES = {"h264_passthrough": ("H264", "h264"), "mjpeg_vp8": ("MJPG", "mjpeg"), "raw_vp8": ("YUYV", "raw")}
SIZES = ("640x360", "640x480", "1280x720")
CAMERA_FPS = 30
STREAM_SECONDS = 2  # made in advance and replayed in a loop
WARMUP_S = 1.0


def add_arguments(parser) -> None:
    parser.add_argument("--usb-modes", nargs="+", choices=list(MODES), default=None, help="usb_camera: paths to measure")
    parser.add_argument("--usb-sizes", nargs="+", default=None, help=f"usb_camera: sizes (default {' '.join(SIZES)})")
    parser.add_argument("--usb-seconds", type=float, default=None, help="usb_camera: seconds measured per run "
                        "(default 10; 4 with --quick)")
    parser.add_argument("--usb-vp8-fps", type=int, default=15, help="usb_camera: frames a second the VP8 paths "
                        "encode (default 15, the Pi 4 fallback's rate; the camera runs at 30)")


def bench_camera(width: int, height: int) -> DeviceInfo:
    rates = (Fraction(CAMERA_FPS), Fraction(15))
    formats = tuple(PixelFormat(fourcc, fourcc, (FrameSize(width, height, rates),)) for fourcc in ("H264", "MJPG", "YUYV"))
    return DeviceInfo("/dev/v4l/by-id/usb-bench-camera-video-index0", "uvcvideo", "bench camera", "usb-bench",
                      0x04200001, formats)


async def measure(mode: str, width: int, height: int, seconds: float, vp8_fps: int) -> dict:
    fourcc, kind = MODES[mode]
    device = bench_camera(width, height)

    def open_capture(path, capture_mode):
        frames = pictures(capture_mode.width, capture_mode.height, STREAM_SECONDS * CAMERA_FPS)
        return FakeCapture(path, capture_mode, encode_stream(frames, capture_mode))

    passthrough = kind == "h264"
    # Frames are asked for at the VP8 rate, as the appliance asks; the camera offers 30 and 15 fps.
    wanted = Wanted(kind, width, height, CAMERA_FPS if passthrough else vp8_fps)
    camera = UsbCamera(wanted, lister=lambda paths: [device], opener=open_capture)
    source = camera.track(encoded=None if passthrough else False)
    if passthrough:
        track, packer = source, H264Encoder()
        encode = packer.pack
    else:
        track = FallbackVideoTrack(source, width, height, vp8_fps)
        encoder = get_encoder(RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000))
        encode = encoder.encode
    frames = payload_bytes = 0
    started = time.monotonic()
    cpu0 = wall0 = None
    try:
        while True:
            now = time.monotonic()
            if cpu0 is None and now - started >= WARMUP_S:
                cpu0, wall0, frames, payload_bytes = time.process_time(), now, 0, 0
            if wall0 is not None and now - wall0 >= seconds:
                break
            item = await asyncio.wait_for(track.recv(), 5)
            payloads, _ = encode(item)
            frames += 1
            payload_bytes += sum(len(p) for p in payloads)
        cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
    finally:
        track.stop()
        camera.close()
    return {"cpu_s_per_min": cpu / wall * 60, "fps": frames / wall, "kbit_s": payload_bytes * 8 / wall / 1000,
            "name": camera.name}


def run(args) -> int:
    modes = args.usb_modes or list(MODES)
    sizes = args.usb_sizes or list(SIZES)
    seconds = args.usb_seconds or (4.0 if args.quick else 10.0)
    try:
        parsed = [tuple(int(v) for v in s.split("x")) for s in sizes]
    except ValueError:
        raise SystemExit(f"--usb-sizes takes WIDTHxHEIGHT, e.g. 640x480 (got {' '.join(sizes)})") from None
    load = os.getloadavg()
    note(f"usb_camera on {platform.machine()} {platform.processor() or ''}, {os.cpu_count()} cores, "
         f"load {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}, {seconds:g} s per run")
    failed = 0
    for mode in modes:
        for (width, height), size in zip(parsed, sizes):
            try:
                result = asyncio.run(measure(mode, width, height, seconds, args.usb_vp8_fps))
            except (BenchError, TimeoutError) as exc:
                note(f"usb_camera {mode} {size}: {exc!r}")
                failed = 2
                continue
            note(f"  {mode:17s} {size:9s} {result['cpu_s_per_min']:6.2f} s CPU/min  {result['fps']:5.1f} fps  "
                 f"{result['kbit_s']:7.0f} kbit/s  ({result['name']})")
            emit(f"usb_camera_cpu_s_per_min.{mode}.{size}", result["cpu_s_per_min"], "s/min")
            emit(f"usb_camera_fps.{mode}.{size}", result["fps"], "1/s")
    return failed
