"""The picture a kiosk encodes in software: one size and rate for every camera.

A Pi 4 passes its camera's H.264 through (hardware/encoded.py); where that is not possible (a clerk's
browser without H.264, a USB camera without its own H.264) the frames go to aiortc's VP8 encoder on
the CPU. At 640x360 and 15 fps that costs about 4 s of CPU per minute on the build host and an
estimated 20-26 s on a Pi 4, inside half a core beside the rest of a call; 720p would cost 45-66 s
(docs/benchmarks.md, usb_camera_cpu_s_per_min). A Pi 5 may be configured for more.
"""
from __future__ import annotations

SOFTWARE_SIZE = (640, 360)
SOFTWARE_FPS = 15
