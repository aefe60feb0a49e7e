"""Bring any decoded audio to the speaker's format: 48 kHz mono s16.

The clerk's browser sends Opus, which aiortc decodes to 48 kHz stereo s16; a
test or the demo may play anything.  The echo canceller must see exactly what
is played, so both speakers convert here first and play the result.
"""
from __future__ import annotations

import av

RATE = 48000


class PlaybackResampler:
    """Stateful converter to 48 kHz mono s16 that survives a change of input format."""

    def __init__(self) -> None:
        self._resampler: av.AudioResampler | None = None
        self._source: tuple | None = None

    def __call__(self, frame: av.AudioFrame) -> list[av.AudioFrame]:
        source = (frame.format.name, frame.layout.name, frame.sample_rate)
        if source != self._source:
            # PyAV binds a resampler to its first input's format; the remote
            # side may renegotiate mid-call, so start afresh on a change.
            self._resampler = av.AudioResampler(format="s16", layout="mono", rate=RATE)
            self._source = source
        return self._resampler.resample(frame)
