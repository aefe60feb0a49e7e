#!/usr/lib/amtsklingel/venv/bin/python
"""The boot test's citizen and ear at the ALSA loopback card (snd-aloop) in the guest.

The kiosk's speaker plays into ``dmix`` on hw:Loopback,0; what is played there comes out at the
capture side hw:Loopback,1, which the kiosk's microphone reads through ``dsnoop``: a pure echo
path, with the ALSA buffers and the loopback card's own clock in it. This program joins both
shared devices (in the appliance's IPC namespace, where dmix and dsnoop keep their shared
memory: ``nsenter --ipc``):

    loopback_audio.py --speaker DEV --microphone DEV --seconds S [--citizen]

records S seconds of what the microphone hears (before the echo canceller) and, with
``--citizen``, plays a citizen's voice into the same dmix meanwhile, so that it reaches the
kiosk's microphone (and, through the call, the clerk). Prints one JSON object: the levels heard
per half second (dBFS), the level played and, with ``--citizen``, the delay from the speaker
side to the microphone side found by cross-correlation.
Runs with the appliance's Python (numpy, pyalsaaudio, and the appliance's test voice:
appliance/selftest/speech.py, which the host's clerk speaks too: image/build/clerk-call.py).
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import threading
import time

import numpy as np

from appliance.selftest.speech import RATE, speech_like, with_peak

PERIOD = 960
LEVEL_WINDOW_S = 0.5


def to_s16(x: np.ndarray) -> np.ndarray:
    return np.clip(np.round(x * 32767), -32768, 32767).astype(np.int16)


def dbfs(samples: np.ndarray) -> float:
    if samples.size == 0:
        return -math.inf
    power = float(np.mean(samples.astype(np.float64) ** 2))
    return 10 * math.log10(power / 32768.0 ** 2) if power > 0 else -math.inf


def levels(samples: np.ndarray, window_s: float = LEVEL_WINDOW_S) -> list[float]:
    step = int(window_s * RATE)
    return [round(dbfs(samples[i:i + step]), 1) for i in range(0, samples.size - step + 1, step)]


def delay_ms(played: np.ndarray, heard: np.ndarray, max_s: float = 1.0) -> float | None:
    """Where ``played`` starts in ``heard`` (cross-correlation by FFT), if it is there at all."""
    n = min(heard.size, played.size + int(max_s * RATE))
    if n < RATE // 2 or not np.any(heard[:n]):
        return None
    a, b = heard[:n].astype(np.float64), played[:n].astype(np.float64)
    size = 1 << (2 * n - 1).bit_length()
    corr = np.fft.irfft(np.fft.rfft(a, size) * np.conj(np.fft.rfft(b, size)), size)[:int(max_s * RATE)]
    lag = int(np.argmax(corr))
    strength = corr[lag] / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-9)
    return round(lag * 1000 / RATE, 1) if strength > 0.2 else None


def _pcm(alsaaudio, kind: str, device: str):
    direction = alsaaudio.PCM_CAPTURE if kind == "capture" else alsaaudio.PCM_PLAYBACK
    # Long buffers: this program's delay does not matter, and the emulated CPU stalls it often.
    return alsaaudio.PCM(direction, alsaaudio.PCM_NORMAL, device=device, channels=1, rate=RATE,
                         format=alsaaudio.PCM_FORMAT_S16_LE, periodsize=PERIOD, periods=16)


def _write(alsaaudio, pcm, data: bytes) -> None:
    """The image's pyalsaaudio (0.10) raises on an underrun ("Broken pipe") and prepares the device
    again on the next write; 0.11 returns -32."""
    for _ in range(3):
        try:
            if pcm.write(data) > 0:
                return
        except alsaaudio.ALSAAudioError as exc:
            if not str(exc).startswith("Broken pipe"):
                raise


def run(speaker: str, microphone: str, seconds: float, citizen: bool) -> dict:
    import alsaaudio

    capture = _pcm(alsaaudio, "capture", microphone)
    voice = to_s16(with_peak(speech_like(seconds, seed=11, pitch=(180, 300)), 0.25)) if citizen else None
    played_at: list[float] = []

    def play() -> None:
        pcm = _pcm(alsaaudio, "playback", speaker)
        played_at.append(time.monotonic())
        try:
            for start in range(0, voice.size, PERIOD):
                _write(alsaaudio, pcm, voice[start:start + PERIOD].tobytes())
        finally:
            pcm.close()

    chunks: list[bytes] = []
    wanted = int(seconds * RATE) * 2
    started = time.monotonic()
    player = threading.Thread(target=play, daemon=True) if citizen else None
    if player:
        player.start()
    got = 0
    while got < wanted and time.monotonic() - started < seconds * 3 + 10:
        frames, data = capture.read()
        if frames > 0:
            chunks.append(data)
            got += len(data)
    capture.close()
    if player:
        player.join(timeout=seconds + 10)
    heard = np.frombuffer(b"".join(chunks), np.int16)
    result = {"seconds": round(heard.size / RATE, 2), "wall_s": round(time.monotonic() - started, 2),
              "heard_dbfs": levels(heard), "microphone": microphone}
    if voice is not None:
        lag = delay_ms(voice, heard)
        # The capture started first: the voice's start in the recording, less the time the player
        # took to begin, is the path from the speaker's side to the microphone's (roughly).
        late_ms = (played_at[0] - started) * 1000 if played_at else 0.0
        result |= {"played_dbfs": round(dbfs(voice), 1), "speaker": speaker,
                   "delay_ms": None if lag is None else round(lag - late_ms, 1)}
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--speaker", required=True, help="the kiosk speaker's ALSA device (dmix on the loopback)")
    parser.add_argument("--microphone", required=True, help="the kiosk microphone's ALSA device (dsnoop)")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--citizen", action="store_true", help="play a citizen's voice meanwhile")
    args = parser.parse_args(argv)
    try:
        print(json.dumps(run(args.speaker, args.microphone, args.seconds, args.citizen)), flush=True)
    except Exception as exc:  # noqa: BLE001 - the self-test reports it as the check's detail
        print(json.dumps({"error": f"{type(exc).__name__}: {exc}"}), flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
