"""The USB microphone through ALSA (pyalsaaudio): see appliance/hardware/pi/audio.py for both devices.

Capture runs only while a track is live, on two threads (alsa_capture.py): one reads the device, the
other cancels the echo and hands 20 ms frames to the call.
"""
from __future__ import annotations

import fractions
from collections.abc import Callable

import av
import numpy as np
from aiortc.mediastreams import MediaStreamTrack

from appliance.hardware.echo import EchoCanceller
from appliance.hardware.errors import AudioDeviceError
from appliance.hardware.gain import gain_factor, scale
from appliance.hardware.handoff import ThreadFedTrack
from appliance.hardware.pi import alsa_cards
from appliance.hardware.pi.alsa_capture import Capture
from appliance.hardware.pi.alsa_pcm import CAPTURE_PERIODS, alsaaudio, open_pcm
from appliance.hardware.resample import RATE

QUEUE_FRAMES = 10  # 200 ms; older audio is dropped rather than delayed


class CardDevice:
    """The card behind an ALSA device name: what to call it, and whether it is there."""

    def __init__(self, device: str, proc) -> None:
        self.device, self._proc = device, proc
        self._name = alsa_cards.describe(device, proc) or f"ALSA {device}"

    @property
    def name(self) -> str:
        """E.g. "USB speakerphone Jabra SPEAK 410 USB (plughw:CARD=kioskaudio)"."""
        # Read again each time: the device plugged in after an unplug may be another model.
        self._name = alsa_cards.describe(self.device, self._proc) or self._name
        return self._name

    def present(self) -> bool:
        """False while the sound card the device names is unplugged."""
        return alsa_cards.present(self.device, self._proc)

class CaptureTrack(ThreadFedTrack):
    """Audio track fed from a capture thread with 20 ms s16 mono 48 kHz chunks."""

    kind = "audio"

    def __init__(self, on_stop=None) -> None:
        super().__init__(QUEUE_FRAMES, on_stop)
        self._time_base = fractions.Fraction(1, RATE)
        self.dropped = 0

    def push(self, index: int, samples: bytes) -> None:
        """Queue one chunk whose first sample is number ``index``; any thread, never blocks."""
        if self._put((index, samples)):
            self.dropped += 1  # the deque dropped the oldest: keep the newest audio, not latency

    async def recv(self) -> av.AudioFrame:
        index, samples = await self._get()
        frame = av.AudioFrame.from_ndarray(np.frombuffer(samples, np.int16).reshape(1, -1),
                                           format="s16", layout="mono")
        frame.sample_rate = RATE
        # pts counts captured samples, so a dropped chunk shows as a gap in time.
        frame.pts = index
        frame.time_base = self._time_base
        return frame

class AlsaMicrophone(CardDevice):
    """Microphone on an ALSA capture device; capture runs only while a track is live, in this process
    (with echo cancellation, the image runs it in a process of its own: process_microphone.py)."""

    def __init__(self, device: str = "default", *, echo: EchoCanceller | None = None,
                 open_pcm=open_pcm, proc=alsa_cards.PROC_ASOUND) -> None:
        """``open_pcm(kind, device, periods)`` and ``proc`` (``/proc/asound``) are replaced only in tests."""
        alsaaudio()  # fail at start-up, not at the first call, if ALSA is missing
        super().__init__(device, proc)
        self._open_pcm = open_pcm
        self.echo = echo
        self.gain = 1.0  # amplitude factor, from central's settings (set_gain_db)
        self.error: Exception | None = None
        # Called (from the cancelling thread) with the ms of sound skipped each time the canceller falls behind.
        self.on_echo_behind: Callable[[int], None] | None = None
        self._overruns = 0  # of captures before the current one
        self._track: CaptureTrack | None = None
        self._capture: Capture | None = None

    @property
    def overruns(self) -> int:
        """Times the device overflowed since start (the 1st, 10th, 100th are logged)."""
        return self._overruns + (self._capture.overruns if self._capture is not None else 0)

    def track(self) -> MediaStreamTrack:
        self._stop_capture()
        pcm = self._open_pcm("capture", self.device, CAPTURE_PERIODS)
        self.error = None
        capture: Capture | None = None
        self._track = track = CaptureTrack(on_stop=lambda: capture is not None and capture.request_stop())

        def failed(error: AudioDeviceError) -> None:
            self.error = error
            track.stop_from_thread()  # the call sees the track end

        capture = Capture(pcm, device=self.device, name=lambda: self.name, echo=self.echo,
                          deliver=lambda index, samples: track.push(index, scale(samples, self.gain).tobytes()),
                          failed=failed, behind=self._behind)
        self._capture = capture
        capture.start()
        return track

    def _behind(self, ms: int) -> None:
        if self.on_echo_behind is not None:
            self.on_echo_behind(ms)

    def set_gain_db(self, gain_db: int) -> None:
        """Takes effect with the next 20 ms of sound, also during a call."""
        self.gain = gain_factor(gain_db)

    def _stop_capture(self) -> None:
        if self._track is not None:
            self._track.stop()
        if self._capture is not None:
            self._capture.stop()
            self._overruns += self._capture.overruns
        self._capture = self._track = None

    def close(self) -> None:
        self._stop_capture()
