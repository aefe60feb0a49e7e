"""The microphone's process (appliance/hardware/pi/capture_process.py) with a canceller that needs three times
real time, as on a unit whose CPU is too busy for it. Run as ``python -m tests.appliance.slow_capture_process``
with the process's own arguments (tests/appliance/test_process_microphone.py starts it through a wrapper)."""
from __future__ import annotations

import sys
import time

import numpy as np

from appliance.hardware.echo import EchoCanceller
from appliance.hardware.pi import capture_process

RATE = 48000


class SlowCanceller(EchoCanceller):
    def process(self, samples: np.ndarray) -> np.ndarray:
        time.sleep(3 * samples.size / RATE)
        return super().process(samples)


if __name__ == "__main__":
    sys.exit(capture_process.main(make_canceller=lambda delay_ms, report_s: SlowCanceller(delay_ms=delay_ms)))
