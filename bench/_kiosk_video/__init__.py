"""Parts of ``bench.kiosk_video_path``: the clerk (sender) process, the kiosk process, the page.

The leading underscore keeps ``python -m bench`` from treating this package as a benchmark.
"""
