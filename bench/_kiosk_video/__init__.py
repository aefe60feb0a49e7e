"""Parts of ``bench.kiosk_video_path``: the clerk (sender) process, the kiosk process, the page, one candidate's
run (``candidate.py``), Chromium's CPU by process role, and the report.

The leading underscore keeps ``python -m bench`` from treating this package as a benchmark.
"""
