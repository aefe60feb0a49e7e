"""A simulated room for the echo canceller: the clerk's voice from the kiosk's speaker back into its microphone.

Shared by the echo tests (tests/appliance/test_echo.py, which hold the targets) and ``bench --only echo``
(which prints the figures). Everything is generated from fixed seeds, so a run gives the same figures
every time on every machine.

The room: the clerk's voice (speech-like: voiced syllables with vibrato, fricatives, pauses) goes
through the loudspeaker (which may saturate, as a small amplifier driven too hard does), through a
room impulse response (direct path, early reflections, a reverberant tail, a small speaker's treble
roll-off) after a delay, into a microphone with -60 dBFS of noise whose clock may run apart from the
speaker's (a USB microphone next to the Pi's own audio out). The citizen speaks close to the microphone.

Timeline (:data:`SECONDS` s): the clerk talks, pauses while the citizen says an utterance alone,
talks again, and the citizen says the same utterance once more while the clerk talks (double talk);
the last :data:`CONVERGED_S` s are the clerk alone, after convergence: the ERLE window.
"""
from __future__ import annotations

import functools
import math
import time
from dataclasses import dataclass

import numpy as np

from appliance.selftest.speech import speech_like

SR = 48000
FRAME = 960  # the microphone's and the speaker's 20 ms frames
SECONDS = 20.0
FAR_PAUSE = (3.0, 7.0)        # the clerk is silent ...
NEAR_ALONE = (3.5, 6.5)       # ... while the citizen speaks (the echo of before has died away)
DOUBLE_TALK = (10.0, 13.0)    # the same utterance while the clerk talks
CONVERGED_S = 5.0             # the last seconds, clerk alone: where ERLE is measured
TAKES = 6                     # clerks, citizens and rooms per condition (AEC3's figures vary from room to room)
NOISE_RMS = 0.001             # ~ -60 dBFS room and preamp noise
SCHEDULING_JITTER_S = 0.004   # how late a thread may hand a frame over
ROOM_GAIN = 0.5               # the speaker 20-30 cm from the microphone: its sound arrives 6 dB down


@dataclass(frozen=True)
class Condition:
    """One way the room can be; every field is something a real installation varies."""
    name: str
    delay_s: float = 0.08          # speaker buffer + air + microphone buffer; unknown to the canceller
    far_dbfs: float = -20.0        # the clerk's voice as it arrives, RMS while talking (peaks ~14 dB above)
    speaker_clip: float | None = None  # the loudspeaker saturates above this level (full scale)
    drift_ppm: float = 0.0         # the microphone's clock runs this much faster than the speaker's
    near_dbfs: float = -26.0       # the citizen at the microphone, RMS while talking: as loud as the echo


PLAIN = Condition("plain")
DELAY_250MS = Condition("delay_250ms", delay_s=0.25)
# A loud clerk (peaks at full scale) into a loudspeaker that clips 6 dB below, and a USB microphone whose
# clock is 200 ppm off the speaker's: two crystals specified to +-100 ppm each, at opposite ends.
CLIPPING_DRIFT = Condition("clipping_drift", far_dbfs=-14.0, speaker_clip=0.5, drift_ppm=200.0)
CONDITIONS = (PLAIN, DELAY_250MS, CLIPPING_DRIFT)


def room_response(seed: int) -> np.ndarray:
    """Speaker to microphone: direct path, a few reflections, a 60 ms reverberant tail, treble roll-off."""
    rng = np.random.default_rng(seed)
    taps = int(0.06 * SR)
    ir = rng.normal(0, 1, taps) * np.exp(-np.arange(taps) / (0.012 * SR)) * 0.15
    ir[0] += 0.5
    for at, gain in ((0.0023, 0.2), (0.0051, -0.12), (0.0094, 0.08)):  # desk, wall, ceiling
        ir[int(at * SR)] += gain
    ir = np.convolve(ir, np.ones(3) / 3)
    return ir * ROOM_GAIN / np.sqrt(np.sum(ir ** 2))


def loudspeaker(played: np.ndarray, clip: float | None) -> np.ndarray:
    """What the loudspeaker makes of the samples: the same, or flattened where its amplifier runs out."""
    return played if clip is None else np.clip(played, -clip, clip)


def clock_resample(x: np.ndarray, ppm: float, taps: int = 32) -> np.ndarray:
    """``x`` (speaker clock) as a microphone whose clock runs ``ppm`` faster samples it (windowed sinc)."""
    if ppm == 0:
        return x
    step = 1 / (1 + ppm * 1e-6)  # speaker samples per microphone sample
    n = int(x.size / step)
    padded = np.concatenate((np.zeros(taps), x, np.zeros(taps)))
    out = np.empty(n)
    half = taps // 2
    window = np.kaiser(taps, 8.0)
    for start in range(0, n, SR):
        pos = np.arange(start, min(n, start + SR)) * step
        base = np.floor(pos).astype(np.int64)
        frac = pos - base
        k = np.arange(-half + 1, half + 1)
        idx = base[:, None] + k[None, :] + taps
        weights = np.sinc(k[None, :] - frac[:, None]) * window[None, :]
        out[start:start + pos.size] = np.sum(padded[idx] * weights, axis=1)
    return out


def i16(x: np.ndarray) -> np.ndarray:
    return np.clip(np.round(x * 32767), -32768, 32767).astype(np.int16)


def energy(x: np.ndarray) -> float:
    return float(np.sum(x.astype(np.float64) ** 2))


def window(span: tuple[float, float]) -> slice:
    return slice(int(span[0] * SR), int(span[1] * SR))


@dataclass(frozen=True)
class Room:
    """What one take of a condition sends to the speaker and what its microphone picks up (s16)."""
    played: np.ndarray
    mic: np.ndarray
    near: np.ndarray  # the citizen alone, as the microphone would pick them up without echo or noise
    mic_rate: float


@functools.lru_cache(maxsize=8)
def room(condition: Condition, take: int, citizen: bool = True, limiter=None) -> Room:
    """The signals of one take (a clerk, a citizen and a room drawn from seeds of their own). ``limiter``,
    if given, makes what shapes the frames sent to the speaker (a fresh one for each take), as the
    appliance's speaker path does."""
    seed = 100 * take
    far = speech_like(SECONDS, seed=seed + 1) * 10 ** (condition.far_dbfs / 20)
    far[window(FAR_PAUSE)] = 0
    played = i16(far)
    if limiter is not None:
        shape = limiter()
        played = np.concatenate([shape(played[i:i + FRAME]) for i in range(0, played.size, FRAME)])
    air = np.convolve(loudspeaker(played / 32767, condition.speaker_clip), room_response(seed + 2))[:far.size]
    air = np.concatenate((np.zeros(int(condition.delay_s * SR)), air))[:far.size]
    echo = clock_resample(air, condition.drift_ppm)
    n_mic = echo.size - echo.size % FRAME
    near = np.zeros(n_mic)
    if citizen:
        utterance = speech_like(NEAR_ALONE[1] - NEAR_ALONE[0], seed=seed + 7, pitch=(180, 260))
        for span in (NEAR_ALONE, DOUBLE_TALK):
            near[window(span)] = utterance * 10 ** (condition.near_dbfs / 20)
    noise = np.random.default_rng(seed + 3).normal(0, NOISE_RMS, n_mic)
    return Room(played=played, mic=i16(echo[:n_mic] + near + noise), near=i16(near),
                mic_rate=SR * (1 + condition.drift_ppm * 1e-6))


class SimulatedClock:
    """The time as the canceller reads it in a simulated run: the moment a frame is due plus the lateness
    of the thread that hands it over (0-4 ms, as an appliance's threads are under load)."""

    def __init__(self, seed: int) -> None:
        self.due = 0.0
        self._rng = np.random.default_rng(seed)

    def __call__(self) -> float:
        return self.due + self._rng.uniform(0.0, SCHEDULING_JITTER_S)


def play(signals: Room, canceller, clock: SimulatedClock) -> tuple[np.ndarray, float]:
    """Run ``signals`` through ``canceller`` (``far_end``/``process``) in real-time order by the two clocks:
    a speaker frame is handed over when its time comes, a microphone frame once it is captured.
    Returns what the canceller let through and the CPU seconds it took."""
    out = np.empty_like(signals.mic)
    spk_frames = signals.played.size // FRAME
    spk = mic = 0
    cpu = 0.0  # in the canceller's calls only, not the simulation's
    while mic * FRAME < out.size:
        if spk < spk_frames and spk * FRAME / SR <= (mic + 1) * FRAME / signals.mic_rate:
            clock.due = spk * FRAME / SR
            played = signals.played[spk * FRAME:(spk + 1) * FRAME]
            started = time.process_time()
            canceller.speaker_position(spk * FRAME)  # the device has played everything before this frame
            canceller.far_end(played)
            cpu += time.process_time() - started
            spk += 1
        else:
            clock.due = (mic + 1) * FRAME / signals.mic_rate
            part = slice(mic * FRAME, (mic + 1) * FRAME)
            started = time.process_time()
            out[part] = canceller.process(signals.mic[part])
            cpu += time.process_time() - started
            mic += 1
    return out, cpu


@dataclass(frozen=True)
class Figures:
    """A condition's figures over all takes (energies summed over the takes, then the ratio)."""
    erle_db: float                  # after convergence, the clerk alone
    worst_erle_db: float            # of the takes
    near_end_loss_db: float         # the citizen in double talk, against the citizen alone
    cpu_s_per_audio_s: float


def measure(condition: Condition, make_canceller, *, takes: int = TAKES, limiter=None) -> Figures:
    """Run ``takes`` takes of ``condition`` through fresh cancellers from ``make_canceller(clock)``, where
    ``clock()`` is the simulated time (seconds)."""
    last = slice(-int(CONVERGED_S * SR), None)
    alone, both = window(NEAR_ALONE), window(DOUBLE_TALK)
    sums = dict(mic=0.0, out=0.0, near_alone=0.0, out_alone=0.0, near_both=0.0, out_both=0.0, cpu=0.0, audio=0.0)
    erles = []
    for take in range(takes):
        signals = room(condition, take, True, limiter)
        out, cpu = _run(signals, make_canceller, take)
        # The same take without the citizen: the echo left in the double-talk window, to take away.
        echo_out, _ = _run(room(condition, take, False, limiter), make_canceller, take)
        erles.append(10 * math.log10(energy(signals.mic[last]) / max(energy(out[last]), 1.0)))
        sums["mic"] += energy(signals.mic[last])
        sums["out"] += energy(out[last])
        sums["near_alone"] += energy(signals.near[alone])
        sums["out_alone"] += energy(out[alone])
        sums["near_both"] += energy(signals.near[both])
        sums["out_both"] += max(energy(out[both]) - energy(echo_out[both]), 1.0)
        sums["cpu"] += cpu
        sums["audio"] += out.size / SR
    kept_alone = sums["out_alone"] / sums["near_alone"]
    kept_both = sums["out_both"] / sums["near_both"]
    return Figures(erle_db=10 * math.log10(sums["mic"] / max(sums["out"], 1.0)), worst_erle_db=min(erles),
                   near_end_loss_db=10 * math.log10(kept_alone / kept_both),
                   cpu_s_per_audio_s=sums["cpu"] / sums["audio"])


def _run(signals: Room, make_canceller, take: int) -> tuple[np.ndarray, float]:
    clock = SimulatedClock(seed=100 * take + 4)
    canceller = make_canceller(clock)
    try:
        return play(signals, canceller, clock)
    finally:
        canceller.close()
