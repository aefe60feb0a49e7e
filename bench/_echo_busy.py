"""The echo canceller on a busy unit: the speaker's and the microphone's threads stall, their devices run
dry and overflow, and the canceller's calls come in bursts.

bench/_echo_room.py hands the canceller its frames in real-time order, 0-4 ms late. On an emulated CPU
(the boot test's guest, 96 % busy) or a loaded Pi the threads that write the speaker and read the
microphone stall for 100-500 ms at a time: the speaker's device then runs dry (an underrun: it plays
silence nobody wrote, until the next write starts it again after the writer's cushion), the
microphone's buffer overflows (an overrun: captured sound is lost), and afterwards each thread hands over
what piled up at once. This simulates both devices sample by sample (1 ms steps) on one clock, the
threads with a schedule of stalls drawn from a seed, and calls the canceller as the appliance's speaker
(appliance/hardware/pi/audio.py) and microphone do, in the order the calls happen.

Used by tests/appliance/test_echo_busy.py. The devices here are exact where the appliance has to
estimate (how long the speaker's device stood dry, how much the microphone's lost), to within the
simulation's 1 ms step.
"""
from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

from appliance.selftest.speech import speech_like
from bench._echo_room import NOISE_RMS, i16, room_response

SR = 48000
TICK = 48                     # 1 ms: the simulation's step
FRAME = 960                   # the clerk's voice arrives in 20 ms frames
CHUNK = 1024                  # the microphone's period (dsnoop's, as in the boot test's guest)
SPEAKER_BUFFER = 12288        # 256 ms: the boot test's dmix buffer for its 200 ms cushion
CUSHION = 9600                # 200 ms of silence written ahead after the device stood still
MIC_BUFFER = 50 * CHUNK       # 1.07 s (CAPTURE_PERIODS of dsnoop's periods)
VOICE_QUEUE = 10              # decoded frames waiting for the speaker, at most (appliance/call/audio_buffer.py)
WINDOW_S = 5.0                # the echo report's windows


@dataclass(frozen=True)
class Load:
    """How busy the unit is: every thread stalls now and then (both often at once: the whole process)."""
    name: str
    stalls_per_s: float = 0.0
    stall_s: tuple[float, float] = (0.1, 0.5)
    together: float = 0.7        # share of the stalls that hold both threads
    seconds: float = 40.0


IDLE = Load("idle")
BUSY = Load("busy", stalls_per_s=1.0)


def _stalls(load: Load, rng: np.random.Generator, ticks: int) -> tuple[np.ndarray, np.ndarray]:
    """Per tick: whether the speaker's and the microphone's thread may run."""
    runs = [np.ones(ticks, bool), np.ones(ticks, bool)]
    t = 0.0
    while load.stalls_per_s and t < load.seconds:
        t += rng.exponential(1 / load.stalls_per_s)
        start, length = int(t * 1000), int(rng.uniform(*load.stall_s) * 1000)
        both = rng.random() < load.together
        for side in (0, 1):
            if both or rng.random() < 0.5:
                runs[side][start:start + length] = False
    return runs[0], runs[1]


@dataclass
class Result:
    mic: np.ndarray        # what the microphone's device captured (the echo, noise)
    sent: np.ndarray       # what the canceller let through, at the same positions (zeros where lost)
    far_active: np.ndarray  # per sample of the microphone: the clerk's voice was heard then
    underruns: int
    overruns: int


def run(load: Load, canceller, seed: int = 0, *, far_dbfs: float = -20.0) -> Result:
    """Play the clerk's voice through a busy unit's speaker into its microphone, through ``canceller``."""
    rng = np.random.default_rng(seed)
    ticks = int(load.seconds * 1000)
    n = ticks * TICK
    voice = i16(speech_like(load.seconds, seed=seed + 1) * 10 ** (far_dbfs / 20))
    speaker_runs, mic_runs = _stalls(load, rng, ticks)
    clock = [0.0]
    canceller_clock = getattr(canceller, "_clock", None)
    if canceller_clock is not None:
        canceller._clock = lambda: clock[0]
        if hasattr(canceller, "meter"):
            canceller.meter.clock = canceller._clock

    # Speaker: the decoder's queue, the device's buffer, what the device plays.
    waiting: deque[np.ndarray] = deque()
    device: deque[np.ndarray] = deque()  # written, not yet played
    queued = 0
    running = False
    played = np.zeros(n, np.int16)
    played_count = 0
    dry_at: float | None = None
    underruns = 0
    # Microphone: the device's buffer; the echo is known only once played, so capture follows play.
    ir = room_response(seed + 2)
    noise = rng.normal(0, NOISE_RMS * 32767, n)
    captured_upto = 0        # the device has captured up to here (sample time)
    read_upto = 0            # the thread has read up to here
    mic_stopped_at: int | None = None  # overflowed: captures nothing until read again
    mic = np.zeros(n)
    sent = np.zeros(n)
    processed = np.zeros(n, bool)
    pending: list[tuple[int, np.ndarray]] = []  # read, not yet a whole 20 ms frame (position, samples)
    pending_n = 0
    last_read_s = 0.0
    unread = 0
    overruns = 0
    tail = np.zeros(ir.size - 1)

    for tick in range(ticks):
        now = tick * TICK
        clock[0] = now / SR
        if now % FRAME == 0 and now + FRAME <= voice.size:  # the network brings the next 20 ms
            waiting.append(voice[now:now + FRAME])
            while len(waiting) > VOICE_QUEUE:
                waiting.popleft()
        if speaker_runs[tick]:
            while waiting and (queued + FRAME + (0 if running else CUSHION) <= SPEAKER_BUFFER):
                frame = waiting.popleft()
                restart = not running
                if not running:
                    # It ran dry: the silence it played since then (None: the call's first words).
                    canceller.speaker_silence(None if dry_at is None else max(0, round((clock[0] - dry_at) * SR)))
                    canceller.far_end(np.zeros(CUSHION, np.int16))
                    device.append(np.zeros(CUSHION, np.int16))
                    queued += CUSHION
                    played_count += CUSHION
                    running = True
                canceller.far_end(frame)
                device.append(frame.copy())
                queued += FRAME
                played_count += FRAME
                dry_at = clock[0] + queued / SR
                canceller.speaker_position(played_count - queued, restart=restart)
                restart = False
                if queued < CUSHION:  # keep the cushion in the device's buffer (audio.py)
                    canceller.far_end(np.zeros(CUSHION - queued, np.int16))
                    device.append(np.zeros(CUSHION - queued, np.int16))
                    played_count += CUSHION - queued
                    queued = CUSHION
                    dry_at = clock[0] + queued / SR
        # The device plays one tick.
        out = np.zeros(TICK, np.int16)
        got = 0
        while running and got < TICK and device:
            head = device[0]
            take = min(TICK - got, head.size)
            out[got:got + take] = head[:take]
            got += take
            if take == head.size:
                device.popleft()
            else:
                device[0] = head[take:]
        queued -= got
        if running and got < TICK:
            running = False  # an underrun: found by the writer's next write
            underruns += 1
        played[now:now + TICK] = out
        # The room carries it to the microphone.
        seg = np.convolve(out.astype(np.float64), ir)
        seg[:tail.size] += tail
        echo = seg[:TICK]
        tail = np.concatenate((seg[TICK:], np.zeros(max(0, ir.size - 1 - seg[TICK:].size))))[:ir.size - 1]
        if mic_stopped_at is None:
            mic[now:now + TICK] = echo + noise[now:now + TICK]
            captured_upto = now + TICK
            if captured_upto - read_upto > MIC_BUFFER:
                mic_stopped_at = now  # an overrun: the device stops
        if mic_runs[tick]:
            if mic_stopped_at is not None:
                overruns += 1
                # As the microphone estimates it (audio.py): since the last read, what it left unread then,
                # and the part of a frame waiting.
                lost = round((clock[0] - last_read_s) * SR) + unread + pending_n
                canceller.microphone_lost(lost)
                pending, pending_n = [], 0
                read_upto = captured_upto = now + TICK
                mic_stopped_at = None
                last_read_s = clock[0]
                mic[read_upto - TICK:read_upto] = 0  # the restart: from the next tick on
                continue
            while captured_upto - read_upto >= CHUNK:
                pending.append((read_upto, mic[read_upto:read_upto + CHUNK]))
                pending_n += CHUNK
                read_upto += CHUNK
                last_read_s = clock[0]
                unread = captured_upto - read_upto
                while pending_n >= FRAME:
                    start = pending[0][0]
                    block = np.concatenate([p for _, p in pending])
                    chunk = block[:FRAME]
                    rest = block[FRAME:]
                    pending = [(start + FRAME, rest)] if rest.size else []
                    pending_n = rest.size
                    out_chunk = canceller.process(i16(chunk / 32767))
                    sent[start:start + FRAME] = out_chunk
                    processed[start:start + FRAME] = True
    # The clerk's voice is heard at the microphone while it plays and for the room's tail after.
    loud = np.abs(played.astype(np.float64)) > 10 ** (-50 / 20) * 32767
    active = np.convolve(loud, np.ones(int(0.3 * SR)), "full")[:n] > 0
    return Result(mic=mic, sent=sent.astype(np.float64), far_active=active & processed, underruns=underruns,
                  overruns=overruns)


def erle_windows(result: Result, skip_s: float = 10.0) -> tuple[float, list[float | None]]:
    """ERLE over the clerk's voice after ``skip_s``, and per :data:`WINDOW_S` window (None without voice)."""
    start = int(skip_s * SR)
    windows, mic_sum, sent_sum = [], 0.0, 0.0
    step = int(WINDOW_S * SR)
    for at in range(start, result.mic.size - step + 1, step):
        part = slice(at, at + step)
        keep = result.far_active[part]  # (not where the microphone's sound was lost in an overrun)
        m = float(np.sum(result.mic[part][keep] ** 2))
        s = float(np.sum(result.sent[part][keep] ** 2))
        windows.append(10 * math.log10(m / max(s, 1.0)) if keep.sum() > SR else None)
        mic_sum, sent_sum = mic_sum + m, sent_sum + s
    return 10 * math.log10(mic_sum / max(sent_sum, 1.0)), windows
