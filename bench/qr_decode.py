"""QR decode: milliseconds to look for a booking's QR code in one camera frame, on the unit.

What is measured
----------------
``QrReader.read`` (appliance/booking/qr_reader.py: zxing-cpp on the luma plane, the local
threshold and, where it finds nothing, the global one) on pictures the fake camera draws
(appliance/hardware/fake/held_code.py) at the frame sizes the kiosk scans: 640x360 (a Pi 4 or a
USB camera outside a call, ``SOFTWARE_SIZE``) and 1280x720 (a Pi 5). Three kinds of frame:

* ``empty``: no code in a busy picture (the citizen still looks for their paper): both
  thresholds run, so this is the usual case while scanning and near the most a frame costs;
* ``held``: a code held up facing the camera;
* ``hard``: turned, tilted, soft, dim and noisy (the test's "all of it, moderately").

Median and 95th percentile of ``--qr-frames`` calls each, one thread (the scanner decodes in one
worker thread, at most ``SCAN_FPS`` frames a second). Time is the calling thread's CPU time per call
(zxing-cpp decodes in the caller's thread), so other work on a shared machine does not inflate it.

The Pi 4 figure is an estimate: ``PI4_FACTOR`` times this host's median (see docs/benchmarks.md,
"The Pi factor assumed": a Cortex-A72 at 1.5 GHz is 4-6x slower per core than this host's vCPU
for integer image loops like zxing's; 6x is used, the cautious end).
"""
from __future__ import annotations

import os
import statistics
import time

import numpy as np

from appliance.booking.qr_reader import QrReader
from appliance.booking.scanner import SCAN_FPS
from appliance.hardware.fake.held_code import Look, background, held_code_picture
from bench._common import BenchError, emit, note, percentile

NAME = "qr_decode"
PI4_FACTOR = 6.0
LINK = "https://buergerbuero.musterdorf.de/booking/7K3M9QX2"
SIZES = ((640, 360), (1280, 720))
KINDS = {"held": Look(), "hard": Look(size=0.45, angle=-25, tilt=0.15, blur=1.0, contrast=0.5, noise=6)}


def add_arguments(parser) -> None:
    parser.add_argument("--qr-frames", type=int, default=None, help="qr_decode: frames per kind and size "
                        "(default 200; 40 with --quick)")


def busy_room(width: int, height: int) -> np.ndarray:
    """A camera picture with edges everywhere (a person, shelves, posters) but no code: random blocks at
    three scales over the plain room, and sensor noise. A smooth picture would be rejected at once and
    flatter the decoder."""
    rng = np.random.default_rng(5)
    picture = background(width, height)
    for cell, depth in ((64, 60), (16, 40), (4, 25)):
        blocks = rng.uniform(-depth, depth, (height // cell + 1, width // cell + 1)).astype(np.float32)
        picture += np.kron(blocks, np.ones((cell, cell), np.float32))[:height, :width]
    return (picture + rng.normal(0, 3, picture.shape)).clip(0, 255).astype(np.uint8)


def _pictures(width: int, height: int) -> dict:
    pictures = {"empty": busy_room(width, height)}
    pictures.update({kind: held_code_picture(LINK, width, height, look) for kind, look in KINDS.items()})
    return pictures


def run(args) -> int:
    frames = args.qr_frames or (40 if args.quick else 200)
    reader = QrReader()
    if not reader.available():
        raise BenchError("the QR decoder is missing: pip install zxing-cpp==2.3.0")
    note(f"qr_decode: {frames} frames per kind and size, load average {os.getloadavg()[0]:.1f}")
    for width, height in SIZES:
        for kind, picture in _pictures(width, height).items():
            read = reader.read(picture)
            if (kind == "empty") == bool(read.codes):
                raise BenchError(f"{kind} {width}x{height}: read {read}, which the tests say it must not")
            times = []
            for _ in range(frames):
                start = time.thread_time()  # CPU time of this thread: what the unit pays, whatever else runs
                reader.read(picture)
                times.append((time.thread_time() - start) * 1000)
            times.sort()
            median = statistics.median(times)
            suffix = "" if (width, height, kind) == (640, 360, "empty") else f".{kind}_{width}x{height}"
            emit(f"qr_decode_ms{suffix}", median, "ms")
            emit(f"qr_decode_ms{suffix}.p95", percentile(times, 95), "ms")
            if width == 640:
                emit(f"qr_decode_ms{suffix}.pi4_estimate", median * PI4_FACTOR, "ms")
            note(f"  {width}x{height} {kind:6}: median {median:6.2f} ms, p95 {percentile(times, 95):6.2f} ms")
    note(f"  scanning at {SCAN_FPS} frames a second; Pi 4 estimate = {PI4_FACTOR:g} x this host")
    return 0
