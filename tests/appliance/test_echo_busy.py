"""Echo cancellation on a busy unit (bench/_echo_busy.py): the speaker's and the microphone's threads stall
for 0.1-0.5 s about once a second, the speaker's device runs dry, the canceller's calls come in bursts, and
the clerk still must not hear themselves (the boot test's guest, 96 % busy, lost the echo in mid-call:
docs/benchmarks.md, boot test runs 4 and 7). Before the far end was paired with the microphone by the
devices' sample counts (appliance/hardware/echo_align.py), the same runs gave 8.5-11.7 dB."""
import numpy as np
import pytest

from appliance.hardware.echo import EchoCanceller
from appliance.hardware.echo_align import MAX_OWED, ReferenceQueue
from bench._echo_busy import IDLE, Load, erle_windows, run

ERLE_TARGET_DB = 40.0      # as tests/appliance/test_echo.py, after the first 5 s
WINDOW_MIN_DB = 30.0       # every 5 s window: the boot test's bar for the whole call
BUSY = Load("busy", stalls_per_s=1.0, seconds=25.0)


@pytest.mark.parametrize("seed", [0, 1])
def test_the_echo_stays_cancelled_while_the_units_threads_stall(seed):
    canceller = EchoCanceller()
    try:
        result = run(BUSY, canceller, seed)
        streams = canceller.streams_line()
    finally:
        canceller.close()
    erle, windows = erle_windows(result, skip_s=5.0)
    print(f"\nseed {seed}: ERLE {erle:.1f} dB, windows {[round(w) for w in windows if w is not None]}, "
          f"{result.underruns} underruns, {result.overruns} overruns; {streams}")
    assert result.underruns >= 5  # the stalls did leave the speaker's device dry, again and again
    assert erle >= ERLE_TARGET_DB
    assert all(w is not None and w >= WINDOW_MIN_DB for w in windows)


def test_an_idle_unit_still_cancels_as_before():
    canceller = EchoCanceller()
    try:
        result = run(Load("idle", seconds=15.0), canceller, 2)
    finally:
        canceller.close()
    erle, _ = erle_windows(result, skip_s=5.0)
    assert result.underruns == 0 and IDLE.stalls_per_s == 0
    assert erle >= ERLE_TARGET_DB


def test_far_end_that_comes_late_keeps_its_place():
    queue = ReferenceQueue()
    queue.add(np.arange(1, 481, dtype=np.int16))
    assert np.array_equal(queue.take(480), np.arange(1, 481))
    # The speaker's device ran dry: the microphone gets silence meanwhile, and the queue owes it ...
    assert not queue.take(960).any() and queue.lead == -960
    # ... until the speaker says how long the device stood silent (1200 samples: 960 owed, 240 to come) ...
    queue.silence(1200)
    queue.add(np.full(480, 7, np.int16))
    # ... so what it plays next comes after that silence, where the microphone will hear it.
    assert np.array_equal(queue.take(720), np.concatenate((np.zeros(240), np.full(480, 7))))
    assert queue.lead == 0


def test_sound_the_microphone_lost_skips_its_far_end():
    queue = ReferenceQueue()
    queue.add(np.arange(1, 1001, dtype=np.int16))
    queue.skip(300)  # an overrun: 300 samples of microphone never came
    assert np.array_equal(queue.take(100), np.arange(301, 401))
    queue.skip(700)  # more than is there: the rest is owed and skipped when it comes
    queue.add(np.arange(1001, 1201, dtype=np.int16))
    assert np.array_equal(queue.take(100), np.arange(1101, 1201))


def test_a_speaker_that_starts_afresh_is_paired_from_now_on():
    queue = ReferenceQueue()
    queue.take(4800)  # before the call's first words: the microphone runs, the speaker plays nothing
    queue.silence(None)  # the first words: a fresh start
    queue.add(np.full(480, 5, np.int16))
    assert np.array_equal(queue.take(480), np.full(480, 5)) and queue.realigned == 1


def test_a_count_that_is_off_does_not_leave_the_canceller_without_far_end():
    queue = ReferenceQueue()
    queue.add(np.full(480, 3, np.int16))
    queue.skip(480 + MAX_OWED + 480)  # an overrun counted too long: more owed than any underrun explains
    assert queue.lead == 0 and queue.realigned == 1  # paired afresh ...
    queue.add(np.full(480, 5, np.int16))
    assert np.array_equal(queue.take(480), np.full(480, 5))  # ... so the far end that comes is used


def test_pairing_afresh_in_mid_call_leaves_room_for_what_the_speaker_still_holds():
    queue = ReferenceQueue()
    queue.speaker_queued = 960  # the speaker's device holds 20 ms that were written before
    queue.take(MAX_OWED + 480)  # owed too long: paired afresh ...
    assert queue.realigned == 1 and queue.lead == 960
    queue.add(np.full(480, 5, np.int16))  # ... and what is written next plays after those 20 ms
    assert not queue.take(960).any() and np.array_equal(queue.take(480), np.full(480, 5))
