"""The boot test's call on the guest's stand-in devices (vivid, snd-aloop): what the self-test reads and
how it judges it, checked here without QEMU (image/build/selftest/call_checks.py, guest_devices.py,
loopback_audio.py, devices/appliance.toml)."""
from __future__ import annotations

import math
import sys
import tomllib
from pathlib import Path

import numpy as np

from appliance.config import check_hardware
from appliance.hardware.echo_report import EchoMeter
from appliance.selftest.speech import speech_like, with_peak

BUILD = Path(__file__).resolve().parents[2] / "image/build"
if str(BUILD / "selftest") not in sys.path:
    sys.path.insert(0, str(BUILD / "selftest"))

import guest_devices  # noqa: E402
import loopback_audio  # noqa: E402


def test_real_devices_only_when_the_command_line_loads_both_modules():
    assert guest_devices.requested("console=ttyAMA0 ro amtsklingel.selftest=1 modules-load=vivid,snd_aloop vivid.n_devs=1")
    assert guest_devices.requested("modules-load=vivid modules-load=snd-aloop")
    assert not guest_devices.requested("modules-load=snd_aloop amtsklingel.selftest=1")
    assert not guest_devices.requested("ro amtsklingel.selftest=1")


def test_the_boot_test_loads_both_modules_and_gives_the_unit_the_loopback_devices():
    boot_test = (BUILD / "boot-test.sh").read_text()
    line = next(line for line in boot_test.splitlines() if 'CMDLINE="$CMDLINE modules-load=' in line)
    assert guest_devices.requested(line.split('CMDLINE="$CMDLINE ')[1])
    settings = tomllib.loads((BUILD / "selftest/devices/appliance.toml").read_text())
    check_hardware(settings["hardware"])  # the appliance would start with it
    hardware = settings["hardware"]
    # The echo path: the speaker into dmix on the loopback's device 0, whose sound comes out at its
    # device 1, where the microphone listens through dsnoop (both shared with the self-test).
    assert hardware["speaker"]["device"] == "plug:'dmix:CARD=Loopback,DEV=0,FORMAT=S16_LE'"
    assert hardware["microphone"]["device"] == "plug:'dsnoop:CARD=Loopback,DEV=1,FORMAT=S16_LE'"
    assert hardware["echo"]["report_s"] > 0 and hardware["camera"]["source"] == "usb"


def test_the_guest_reads_the_appliances_echo_report_lines():
    clock = iter([0.0, 0.0, 0.1, 0.2, 5.0]).__next__
    meter = EchoMeter(clock)
    meter.far_end(np.full(960, 3277, np.int16))
    meter.captured(np.full(960, 3277, np.int16), np.full(960, 33, np.int16))
    found = guest_devices.ECHO_REPORT.fullmatch(meter.line())
    assert found and float(found["reduced"]) == 39.9


def test_erle_weights_each_window_by_how_long_the_clerk_spoke():
    reports = [{"far": 5.0, "mic": -20.0, "sent": -60.0}, {"far": 5.0, "mic": -20.0, "sent": -40.0},
               {"far": 0.0, "mic": -90.0, "sent": -90.0}]
    erle, far = guest_devices.erle_db(reports)
    # Half the time 40 dB, half 20 dB: the energy that gets through is dominated by the worse half.
    assert far == 10.0 and round(erle, 1) == round(10 * math.log10(2 / (1e-4 + 1e-2)) + 0.0, 1)
    assert guest_devices.erle_db([{"far": 0.0, "mic": -20.0, "sent": -20.0}]) == (None, 0.0)


def test_cpu_and_watchdog_figures_from_the_units_samples():
    samples = [{"t": 0.0, "CPUUsageNSec": 0, "WatchdogTimestampMonotonic": 10_000_000, "busy_ticks": 100,
                "all_ticks": 1000},
               {"t": 30.0, "CPUUsageNSec": 15_000_000_000, "WatchdogTimestampMonotonic": 25_100_000, "busy_ticks": 1600,
                "all_ticks": 7000},
               {"t": 60.0, "CPUUsageNSec": 30_000_000_000, "WatchdogTimestampMonotonic": 41_300_000, "busy_ticks": 3100,
                "all_ticks": 13000}]
    assert guest_devices.cpu_s_per_min(samples) == 30.0
    assert [round(g, 1) for g in guest_devices.ping_gaps_s(samples, "WatchdogTimestampMonotonic")] == [15.1, 16.2]
    assert guest_devices.cpu_s_per_min(samples[:1]) is None
    assert guest_devices.busy_fraction(samples) == 0.25


def test_the_loopback_ear_finds_the_citizens_voice_and_its_delay():
    voice = loopback_audio.to_s16(with_peak(speech_like(3, seed=11, pitch=(180, 300)), 0.25))
    heard = np.concatenate((np.zeros(int(0.09 * loopback_audio.RATE), np.int16), voice // 4))
    assert loopback_audio.delay_ms(voice, heard) == 90.0
    assert loopback_audio.delay_ms(voice, np.zeros_like(heard)) is None
    levels = loopback_audio.levels(heard)
    assert levels[0] < -30 and -45 < max(levels) < -30  # a quarter of a -26 dBFS voice: ~ -38 dBFS


JOURNAL = """\
[   88.100000] guest amtsklingel-appliance[612]: ALSA capture 'dsnoop': period 1024 frames (21.3 ms), buffer 16384 frames (341.3 ms)
[   88.200000] guest amtsklingel-appliance[612]: ALSA playback 'dmix': period 1024 frames (21.3 ms), buffer 12288 frames (256.0 ms)
[   90.000000] guest amtsklingel-appliance[612]: call 1: connected
[   95.000000] guest amtsklingel-appliance[612]: ALSA playback underrun on dmix (1 since start)
[   99.000000] guest amtsklingel-appliance[612]: ALSA playback underrun on dmix (2 since start)
"""


def test_the_alsa_sizes_report_quotes_the_sizes_not_the_underruns():
    found = guest_devices.pick_lines(JOURNAL, guest_devices.ALSA_SIZES, last=2)
    assert found == ["88.100000 s: ALSA capture 'dsnoop': period 1024 frames (21.3 ms), buffer 16384 frames (341.3 ms)",
                     "88.200000 s: ALSA playback 'dmix': period 1024 frames (21.3 ms), buffer 12288 frames (256.0 ms)"]


def test_the_phases_wait_for_the_calls_media_to_connect():
    cat = "\n".join(line.split("]: ", 1)[1] for line in JOURNAL.splitlines())
    assert guest_devices.calls_connected(cat) == 1
    assert guest_devices.calls_connected(cat + "\ncall 2: connected\ncentral ended the call after it had connected") == 2
    assert guest_devices.calls_connected("call 1: failed\ncall 1: connecting") == 0
    # as the image's journal has it (boot test of 2026-12-04 18:05)
    assert guest_devices.calls_connected("INFO:appliance.controller.media:call 1: connected\n"
                                         "INFO:appliance.controller.media:call 1: failed") == 1


def test_the_guest_reads_whether_the_canceller_kept_up():
    from appliance.hardware.echo_streams import StreamCounters
    from appliance.hardware.pi.capture_process import MicrophoneProcess

    class Echo:  # what MicrophoneProcess needs of a canceller here
        window_note = None

        def close(self) -> None:
            pass

    process = MicrophoneProcess("null", Echo(), writer=type("W", (), {"dropped": 0})())
    counters = StreamCounters()
    counters.microphone(960 * 100, 0)  # 2 s of sound handed to the canceller
    counters.note = process.window_note()
    line = "echo report: 5.0 s, far end 4.0 s, microphone -30.0 dBFS, sent -31.0 dBFS, reduced 1.0 dB; " + counters.line()
    found = guest_devices.ECHO_REPORT.search(line)
    reports = [{"streams": line[found.end():].lstrip("; ")}] * 2
    load = guest_devices.canceller_load(reports)
    assert load is not None and load["sound_s"] == 4.0 and load["skipped"] == 0 and load["cpu_s"] >= 0
    # A window in which it fell 3 s behind (as in the boot test's runs 14-15, docs/benchmarks.md).
    behind = [{"streams": r["streams"].replace("frames skipped behind 0", "frames skipped behind 150")} for r in reports]
    assert guest_devices.canceller_load(behind)["skipped"] == 300
    assert guest_devices.canceller_load([{"streams": "speaker underruns 0 (0 ms ...)"}]) is None
