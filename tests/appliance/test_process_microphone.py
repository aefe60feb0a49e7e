"""The microphone with echo cancellation in a process of its own (appliance/hardware/pi/process_microphone.py):
real pyalsaaudio in a real child process, on ALSA's software devices (no sound card needed).

``null`` delivers capture at once (the capture paces itself); the ``file`` plugin reading ``infile`` gives
capture whose content is known: here the echo of what the test plays as the clerk.
"""
from __future__ import annotations

import asyncio
import math
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from appliance.hardware.errors import AudioDeviceError
from appliance.hardware.pi import capture_wire as wire
from appliance.selftest.speech import speech_like
from bench._echo_room import room_response
from tests.polling import until

pytest.importorskip("alsaaudio", reason="pyalsaaudio not installed (pip install pyalsaaudio)")

from appliance.hardware.pi import capture_process  # noqa: E402
from appliance.hardware.pi.process_microphone import ProcessMicrophone  # noqa: E402

RATE = 48000
FRAME = 960
READY_S = 60  # importing the canceller in a fresh interpreter on a loaded machine
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def microphones():
    made: list[ProcessMicrophone] = []

    def make(device: str, **options) -> ProcessMicrophone:
        microphone = ProcessMicrophone(device, **options)
        made.append(microphone)
        assert microphone.wait_ready(READY_S), "the microphone's process did not say it was ready"
        return microphone

    yield make
    for microphone in made:
        microphone.close()


async def frames(track, count: int) -> list:
    return [await asyncio.wait_for(track.recv(), 10) for _ in range(count)]


async def test_frames_of_20ms_come_from_the_process_and_close_ends_it(microphones):
    microphone = microphones("null")
    track = microphone.track()
    got = await frames(track, 25)
    assert [(f.samples, f.sample_rate, f.format.name, f.layout.name) for f in got] == [(960, 48000, "s16", "mono")] * 25
    assert [f.pts for f in got] == [i * FRAME for i in range(25)]  # pts counts captured samples
    second = microphone.track()  # the next call: the first track ends, the same process goes on
    assert track.readyState == "ended"
    assert [f.pts for f in await frames(second, 3)] == [0, 960, 1920]
    assert microphone.starts == 1 and microphone.running
    microphone.close()
    assert not microphone.running and second.readyState == "ended"


def test_the_process_puts_its_sound_before_the_call_s_video(microphones, monkeypatch, caplog):
    # This test runs with the right to raise priority (root, or LimitNICE as the appliance's unit gives it).
    microphone = microphones("null")
    assert os.getpriority(os.PRIO_PROCESS, microphone.pid) == capture_process.NICE == -10
    assert os.getpriority(os.PRIO_PROCESS, os.getpid()) > capture_process.NICE  # the appliance itself is not raised

    def refused(*_args):
        raise PermissionError(1, "Operation not permitted")
    monkeypatch.setattr(os, "setpriority", refused)
    assert not capture_process.raise_priority()  # refused (a unit without LimitNICE): it goes on, and says why
    assert "keeps the normal priority (Operation not permitted)" in caplog.text
    assert "LimitNICE=-10" in caplog.text


def echo_of(played: np.ndarray, delay_s: float) -> np.ndarray:
    """What a microphone 20-30 cm from the speaker picks up of it: the room's response, 6 dB down, late."""
    air = np.convolve(played / 32767, room_response(7))[:played.size] * 0.5
    air = np.concatenate((np.zeros(int(delay_s * RATE)), air))[:played.size]
    noise = np.random.default_rng(3).normal(0, 0.001, played.size)
    return np.clip(np.round((air + noise) * 32767), -32768, 32767).astype(np.int16)


def level_db(samples: np.ndarray) -> float:
    power = float(np.mean(samples.astype(np.float64) ** 2))
    return 10 * math.log10(max(power, 1e-9) / 32768.0 ** 2)


async def test_the_echo_of_what_the_speaker_plays_is_removed_in_the_process(microphones, tmp_path, monkeypatch):
    seconds, measured = 9.0, (6.0, 9.0)
    played = np.round(speech_like(seconds, seed=11) * 0.1 * 32767).astype(np.int16)  # the clerk at -20 dBFS
    heard = echo_of(played, 0.1)
    infile = tmp_path / "room.raw"
    np.concatenate((heard, np.zeros(RATE * 5, np.int16))).astype("<i2").tofile(infile)
    conf = tmp_path / "asound.conf"
    conf.write_text(f'</usr/share/alsa/alsa.conf>\npcm.room {{ type file slave.pcm null file "/dev/null" '
                    f'infile "{infile}" format "raw" }}\n')
    monkeypatch.setenv("ALSA_CONFIG_PATH", str(conf))  # the process inherits it
    microphone = microphones("room")
    track = microphone.track()
    got: list[np.ndarray] = []
    listening = asyncio.ensure_future(_listen(track, got, int(seconds * RATE)))
    # As the speaker does: silence written ahead of the clerk's first words (its cushion), so the far end
    # reaches the canceller before the microphone hears it.
    microphone.echo.far_end(np.zeros(RATE // 10, np.int16))
    loop = asyncio.get_running_loop()
    started = loop.time()
    for i in range(0, played.size, FRAME):  # as the speaker's device takes the clerk's voice, 20 ms at a time
        microphone.echo.far_end(played[i:i + FRAME])
        await asyncio.sleep(max(0.0, started + (i + FRAME) / RATE - loop.time()))
    await asyncio.wait_for(listening, 10)
    sent = np.concatenate(got)[:played.size]
    span = slice(int(measured[0] * RATE), int(measured[1] * RATE))
    erle = level_db(heard[span]) - level_db(sent[span])
    print(f"\nERLE through the microphone's process: {erle:.1f} dB (echo at {level_db(heard[span]):.1f} dBFS)")
    # Measured 2026-12-05: about 50 dB. Without the far end reaching the process it is 0-3 dB.
    assert erle >= 25


async def _listen(track, got: list, samples: int) -> None:
    while sum(chunk.size for chunk in got) < samples:
        got.append((await track.recv()).to_ndarray().reshape(-1).copy())


async def test_a_killed_process_ends_the_call_s_microphone_and_the_next_call_starts_another(microphones):
    microphone = microphones("null")
    track = microphone.track()
    await frames(track, 2)
    os.kill(microphone.pid, signal.SIGKILL)
    with pytest.raises(Exception):  # noqa: B017 - MediaStreamError: the call sees the track end
        await frames(track, 100)
    assert isinstance(microphone.error, AudioDeviceError)
    assert "microphone's process ended" in str(microphone.error) and "next call" in str(microphone.error)
    again = microphone.track()
    assert len(await frames(again, 3)) == 3 and microphone.starts == 2 and microphone.error is None


async def test_a_missing_device_ends_the_track_with_a_clear_error(microphones):
    microphone = microphones("no_such_card")
    track = microphone.track()
    with pytest.raises(Exception):  # noqa: B017 - MediaStreamError
        await frames(track, 1)
    assert "capture device 'no_such_card'" in str(microphone.error)
    assert microphone.running  # the process waits for the next call


async def test_the_speaker_never_waits_for_a_stalled_process(microphones):
    microphone = microphones("null")
    os.kill(microphone.pid, signal.SIGSTOP)
    try:
        done = threading.Event()

        def speaker() -> None:  # 20 s of far end: twice what the pipe holds
            for _ in range(1000):
                microphone.echo.far_end(np.zeros(FRAME, np.int16))
                microphone.echo.speaker_position(0)
            done.set()

        threading.Thread(target=speaker, daemon=True).start()
        assert await asyncio.get_running_loop().run_in_executor(None, done.wait, 30), "the speaker's thread blocked"
        assert microphone.echo._lost  # what did not fit is lost, and the process is told when it can hear again
    finally:
        os.kill(microphone.pid, signal.SIGCONT)
    await until(lambda: (microphone.echo.far_end(np.zeros(FRAME, np.int16)), not microphone.echo._lost)[1], seconds=20)
    assert len(await frames(microphone.track(), 3)) == 3


async def test_a_canceller_falling_behind_in_the_process_is_counted_in_the_unit_s_health(microphones, tmp_path):
    """The process tells the appliance each time its canceller skips sound; the health report counts it as a
    fault of the microphone, which still works."""
    from appliance.fleet.devices import DeviceBook, count_echo_behind
    from appliance.fleet.health import HealthReporter
    from appliance.fleet.image import ImageInfo
    from appliance.hardware.fake.unit import FakeUnit
    slow = tmp_path / "python"  # started as "python -m appliance.hardware.pi.capture_process ARGS"
    slow.write_text(f"#!/bin/sh\nshift 2\ncd '{REPO}'\nexec '{sys.executable}' -m tests.appliance.slow_capture_process \"$@\"\n")
    slow.chmod(0o755)
    microphone = microphones("null", python=str(slow))
    book, skipped = DeviceBook(), []
    assert count_echo_behind(microphone, book)
    counted = microphone.on_echo_behind
    microphone.on_echo_behind = lambda ms: (counted(ms), skipped.append(ms))
    track = microphone.track()
    book.ok("microphone", "live", name=microphone.name)  # as the call does once the track delivers
    await frames(track, 3)  # the sound goes on: the newest frames after each skip
    await until(lambda: len(skipped) >= 2, seconds=30, what="two skips reported by the microphone's process")
    assert all(ms >= 300 for ms in skipped)  # more than mic_backlog.MAX_BACKLOG frames behind each time
    reporter = HealthReporter(send=None, book=book, unit=FakeUnit("fake-0001"), data_dir=tmp_path,
                              image=ImageInfo(version="0.1.0", slot="A", boot_reason="unknown"))
    report = reporter.report()
    assert report.devices["microphone"].state == "ok"
    [fault] = [f for f in report.faults if f.code == "echo_behind"]
    assert fault.device == "microphone" and fault.count >= len(skipped) >= 2


def run_process(orders: bytes) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "appliance.hardware.pi.capture_process", "--device", "null"],
                          input=orders, capture_output=True, timeout=READY_S, cwd=REPO)


def test_the_process_ends_when_the_appliance_closes_its_orders():
    done = run_process(wire.message(wire.BYPASS, wire.FLAG.pack(1)) + wire.message(wire.FAR_END, bytes(1920)))
    assert done.returncode == 0
    assert done.stdout == wire.message(wire.READY)


@pytest.mark.parametrize("orders,says", [
    (wire.HEADER.pack(b"Z", 0), "unknown order b'Z'"),
    (wire.HEADER.pack(wire.FAR_END, 1 << 30), "stream is broken"),
    (wire.HEADER.pack(wire.FAR_END, 100) + bytes(10), "ended inside a message"),
])
def test_a_broken_order_stream_ends_the_process_and_says_why(orders, says):
    done = run_process(orders)
    assert done.returncode == 1
    assert says in done.stderr.decode()


def test_messages_are_framed_and_bounded():
    import io
    stream = io.BytesIO(wire.message(wire.FRAME, b"abc") + wire.message(wire.STOP))
    assert wire.read_message(stream) == (wire.FRAME, b"abc")
    assert wire.read_message(stream) == (wire.STOP, b"")
    assert wire.read_message(stream) is None
    with pytest.raises(wire.WireError, match="longer than"):
        wire.message(wire.FAR_END, bytes(wire.MAX_PAYLOAD + 1))
    assert len(wire.message(wire.FAR_END, bytes(2 * wire.MAX_FAR_SAMPLES))) <= wire.ATOMIC_BYTES


def test_a_frame_the_appliance_does_not_take_in_time_is_dropped_never_waited_for():
    from appliance.hardware.pi.capture_process import Writer
    read_end, write_end = os.pipe()
    with os.fdopen(read_end, "rb", buffering=0) as reader, os.fdopen(write_end, "wb", buffering=0) as out:
        writer = Writer(out)
        frame = wire.FRAME_HEAD.pack(1, 0) + bytes(2 * FRAME)
        sent = 0
        while writer.dropped == 0 and sent < 10_000:  # the appliance reads nothing: the pipe fills
            writer.send(wire.FRAME, frame, droppable=True)
            sent += 1
        assert writer.dropped == 1 and 0 < sent < 10_000
        # Other messages wait for room: once the appliance reads again, the failure still gets through.
        failure = wire.message(wire.FAILED, wire.TRACK.pack(1) + b"gone")
        written = (sent - 1) * len(wire.message(wire.FRAME, frame)) + len(failure)
        got = bytearray()

        def drain() -> None:
            while len(got) < written and (chunk := reader.read(written - len(got))):
                got.extend(chunk)

        draining = threading.Thread(target=drain, daemon=True)
        draining.start()
        writer.send(wire.FAILED, wire.TRACK.pack(1) + b"gone")
        draining.join(30)
        assert not writer.closed and got.endswith(failure) and len(got) == written


async def test_the_process_s_threads_are_named_for_top_and_the_boot_test(microphones):
    sys.path.insert(0, str(REPO / "image/build/selftest"))
    try:
        import guest_devices
    finally:
        sys.path.pop(0)
    microphone = microphones("null")
    track = microphone.track()
    await frames(track, 5)
    threads = guest_devices.child_threads(os.getpid())  # what the boot test reads in the guest
    ours = {name.split(" ", 1)[1]: nice for name, (nice, _cpu) in threads.items()
            if name.startswith(f"{microphone.pid}/")}
    assert {"mic-orders", "mic-read", "mic-echo"} <= set(ours), threads
    assert ours["mic-echo"] == ours["mic-read"] == -10  # the threads take the process's priority
