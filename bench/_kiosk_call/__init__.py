"""Parts of ``bench.kiosk_call``: the kiosk process and its stand-in encoder, the parent's handle on it, the
clerk's page, the measurements and the report.

The leading underscore keeps ``python -m bench`` from treating this package as a benchmark.
"""

NAME = "kiosk_call"  # also the prefix of every figure's metric name
MODES = ("vp8", "h264", "passthrough")
WIDTH, HEIGHT, FPS = 1280, 720, 30  # the kiosk's test pattern, as the Pi's camera sends it
