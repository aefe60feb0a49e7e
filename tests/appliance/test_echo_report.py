"""The echo report: what IT (and the boot test in the guest) reads about how much echo is removed."""
import asyncio
import logging

import numpy as np

from appliance.hardware.echo_report import REPORT_LINE, EchoMeter, ReportingEchoCanceller
from appliance.hardware.select import open_hardware
from appliance.selftest.speech import speech_like
from bench._echo_room import ROOM_GAIN, SR, i16, room_response

FRAME = 960


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_meter_counts_only_frames_that_follow_the_clerks_voice():
    clock = Clock()
    meter = EchoMeter(clock)
    loud = np.full(FRAME, 3277, np.int16)  # -20 dBFS
    quiet = np.full(FRAME, 328, np.int16)  # -40 dBFS
    # The citizen alone (no far end): nothing counted.
    meter.captured(loud, loud)
    clock.now += 1.0
    # The clerk speaks; the microphone hears the echo at -20 dBFS, the canceller sends -40 dBFS.
    meter.far_end(loud)
    meter.captured(loud, quiet)
    clock.now += 0.02
    meter.captured(loud, quiet)
    clock.now += 2.0  # long after the clerk's last word: no echo to measure
    meter.captured(loud, loud)
    line = meter.line()
    found = REPORT_LINE.fullmatch(line)
    assert found, line
    assert float(found["far"]) == 0.0  # two 20 ms frames, rounded to 0.1 s
    assert float(found["mic"]) == -20.0 and float(found["sent"]) == -40.0
    assert float(found["reduced"]) == 20.0
    # The next window starts empty.
    assert REPORT_LINE.fullmatch(meter.line())["reduced"] == "n/a"
    # The clerk speaks but the microphone hears nothing at all: no figure, and a line the boot test reads.
    meter.far_end(loud)
    meter.captured(np.zeros(FRAME, np.int16), np.zeros(FRAME, np.int16))
    silent = REPORT_LINE.fullmatch(meter.line())
    assert silent and silent["mic"] == "-inf" and silent["reduced"] == "n/a"


def test_the_canceller_reports_its_echo_reduction_in_the_log(caplog):
    clock = Clock()
    echo = ReportingEchoCanceller(report_s=4.0, clock=clock, delay_ms=40)
    far = i16(speech_like(9, seed=3))
    delay = np.zeros(int(0.04 * SR))
    mic = i16(ROOM_GAIN * np.convolve(np.concatenate((delay, far / 32767)), room_response(4))[:far.size])
    caplog.set_level(logging.INFO, logger="appliance.hardware.echo_report")
    try:
        for start in range(0, far.size - FRAME + 1, FRAME):
            echo.far_end(far[start:start + FRAME])
            echo.process(mic[start:start + FRAME])
            clock.now += FRAME / SR
    finally:
        echo.close()
    lines = [REPORT_LINE.match(r.getMessage()) for r in caplog.records]
    assert len(lines) == 2 and all(lines), [r.getMessage() for r in caplog.records]
    # After the figures, what the canceller was fed: both sides in step, nothing lost.
    assert "; speaker underruns 0 (0 ms of silence not in the far end), microphone overruns 0 (0 ms lost), " \
        in caplog.records[1].getMessage()
    assert "far end's lead 20..20 ms" in caplog.records[1].getMessage()  # each frame's far end just ahead
    # Once converged (the second 4 s), the canceller takes most of the echo out.
    assert float(lines[1]["far"]) > 2.0
    assert float(lines[1]["reduced"]) > 20.0


async def test_the_report_is_off_unless_asked_for(capfd):
    # ALSA's null device: a real (pi) microphone and speaker without a sound card. The microphone and its
    # canceller run in a process of their own, which logs to the same place as the appliance (stderr here).
    alsa = {"backend": "fake", "microphone": {"backend": "pi", "device": "null"},
            "speaker": {"backend": "pi", "device": "null"}}
    for echo, reports in (({}, False), ({"report_s": 1}, True)):
        hardware = open_hardware(alsa | {"echo": echo})
        try:
            assert hardware.echo is not None and hardware.microphone.wait_ready(60)
            track = hardware.microphone.track()
            for _ in range(75):  # 1.5 s of sound
                await asyncio.wait_for(track.recv(), 10)
        finally:
            hardware.close()
        err = capfd.readouterr().err
        assert ("echo report: " in err) == reports
        # ... and says what the microphone's process had of the CPU and whether it fell behind.
        assert ("microphone's process CPU " in err) == reports


async def test_the_canceller_can_stay_in_the_appliance_s_own_process():
    alsa = {"backend": "fake", "microphone": {"backend": "pi", "device": "null"},
            "speaker": {"backend": "pi", "device": "null"}, "echo": {"own_process": False}}
    hardware = open_hardware(alsa)
    try:
        assert hardware.echo is not None and not isinstance(hardware.echo, ReportingEchoCanceller)
        assert hardware.microphone.echo is hardware.echo
    finally:
        hardware.close()
    hardware = open_hardware(alsa | {"echo": {"own_process": False, "report_s": 5}})
    try:
        assert isinstance(hardware.echo, ReportingEchoCanceller) and hardware.echo.report_s == 5
    finally:
        hardware.close()
