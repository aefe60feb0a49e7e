"""The microphone's frames between the thread that reads the device and the one that cancels their echo
(appliance/hardware/pi/mic_backlog.py): in order, and a thread that fell far behind skips to the newest
frame in one go, saying exactly how much it skipped."""
from appliance.hardware.pi.mic_backlog import MAX_BACKLOG, Backlog

FRAME = 960


def frames(n: int, start: int = 0) -> list[bytes]:
    return [bytes([i % 256]) * (2 * FRAME) for i in range(start, start + n)]


def test_frames_and_lost_sound_come_out_in_the_order_read():
    backlog = Backlog(FRAME)
    first, second = frames(2)
    backlog.put(first)
    backlog.put(1234)  # the device overflowed between the two
    backlog.put(second)
    assert backlog.take(0.01) == [first, 1234, second]
    assert backlog.take(0.01) == []  # nothing more: back after the timeout


def test_far_behind_it_skips_to_the_newest_frame_and_counts_what_it_skipped():
    backlog = Backlog(FRAME)
    read = frames(MAX_BACKLOG + 5)
    for frame in read[:3]:
        backlog.put(frame)
    backlog.put(500)  # an overrun among the old frames: counted with them
    for frame in read[3:]:
        backlog.put(frame)
    assert backlog.take(0.01) == [(len(read) - 1) * FRAME + 500, read[-1]]
    assert backlog.skipped == len(read) - 1
