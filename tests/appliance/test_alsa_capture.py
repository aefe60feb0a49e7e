"""The capture's two threads (appliance/hardware/pi/alsa_capture.py) when the echo canceller cannot keep up:
the microphone's sound goes on with the newest frames, the canceller is told exactly what it missed, and
the journal says why and what to do."""
from __future__ import annotations

import logging
import threading
import time

import numpy as np
import pytest

pytest.importorskip("alsaaudio", reason="pyalsaaudio not installed (pip install pyalsaaudio)")

from appliance.hardware.pi.alsa_capture import Capture  # noqa: E402
from appliance.hardware.pi.alsa_pcm import PERIOD  # noqa: E402
from appliance.hardware.resample import RATE  # noqa: E402


class ClockedPcm:
    """A sound card's capture: one 20 ms period per read, on its own clock."""

    def read(self):
        time.sleep(PERIOD / RATE)
        return PERIOD, bytes(2 * PERIOD)

    def info(self) -> dict:
        return {"period_size": PERIOD, "buffer_size": 50 * PERIOD}

    def avail(self) -> int:
        return 0

    def close(self) -> None:
        pass


class SlowCanceller:
    """Takes three times as long as the sound it is given, as on a unit whose CPU is too busy."""

    def __init__(self) -> None:
        self.lost: list[int] = []
        self.processed = 0
        self.behind = 0  # times told it fell behind (it sheds noise suppression: test_echo_shedding.py)

    def process(self, samples: np.ndarray) -> np.ndarray:
        time.sleep(3 * samples.size / RATE)
        self.processed += samples.size
        return samples

    def microphone_lost(self, samples: int) -> None:
        self.lost.append(samples)

    def fell_behind(self) -> None:
        self.behind += 1


def test_a_canceller_that_falls_behind_skips_to_the_newest_sound_and_says_so(caplog):
    caplog.set_level(logging.INFO, logger="appliance.hardware.pi.alsa_capture")
    echo, delivered, failed, behind = SlowCanceller(), [], [], []
    warned = threading.Event()
    capture = Capture(ClockedPcm(), device="test", name=lambda: "test microphone", echo=echo,
                      deliver=lambda index, samples: delivered.append(index), failed=failed.append,
                      behind=behind.append)
    handler = logging.Handler()
    handler.emit = lambda record: "fell" in record.getMessage() and warned.set()
    logging.getLogger("appliance.hardware.pi.alsa_capture").addHandler(handler)
    try:
        capture.start()
        assert warned.wait(30), "no warning while the canceller fell behind"
    finally:
        capture.stop()
        logging.getLogger("appliance.hardware.pi.alsa_capture").removeHandler(handler)
    assert not failed
    assert capture.skipped > 0 and sum(echo.lost) >= capture.skipped * PERIOD  # told of every frame it missed
    # The appliance is told of every skip, with how much sound it skipped (its health counts them).
    assert behind and sum(behind) == capture.skipped * PERIOD * 1000 // RATE and min(behind) >= 300
    assert echo.behind == len(behind)  # and the canceller itself, each time
    # Frames keep their place in time: after a skip the index jumps by what was skipped.
    assert delivered == sorted(delivered) and delivered[-1] > PERIOD * (len(delivered) - 1)
    warning = next(r for r in caplog.records if "fell" in r.getMessage())
    assert warning.levelno == logging.WARNING
    assert "CPU is too busy" in warning.getMessage() and "camera's size or rate" in warning.getMessage()


def test_a_failing_listener_for_skips_does_not_stop_the_sound():
    told, after = threading.Event(), threading.Event()

    def listener(ms: int) -> None:
        told.set()
        raise RuntimeError("listener bug")

    capture = Capture(ClockedPcm(), device="test", name=lambda: "test microphone", echo=SlowCanceller(),
                      deliver=lambda index, samples: told.is_set() and after.set(), failed=lambda error: None,
                      behind=listener)
    try:
        capture.start()
        assert told.wait(30), "no skip reported"
        assert after.wait(10), "frames stopped after the listener failed"
    finally:
        capture.stop()
