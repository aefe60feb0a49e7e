"""Parts of ``bench.central_latency``: the figures of a phase, the simulated consoles and kiosks, the driver that
connects them and runs phases of visits, the ramp, and the report.

The leading underscore keeps ``python -m bench`` from treating this package as a benchmark.
"""

STAGE_TIMEOUT_S = 10.0      # any one wait: reply from central, all consoles, cancel acknowledged
