"""What the tests of the kiosk's audio send and receive paths (test_audio_send.py, test_audio_buffer.py) share:
the kiosk's peer connection as a call builds it, and the check that a replacement is declined, loudly, where the
installed aiortc builds its objects otherwise."""
from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable

import pytest

from appliance.call.peer import CallPeer
from appliance.hardware.fake.camera import TestPatternTrack
from appliance.hardware.fake.microphone import SyntheticMicrophoneTrack


@contextlib.asynccontextmanager
async def kiosk_peer() -> AsyncIterator[CallPeer]:
    """The kiosk's peer connection with the fake camera and microphone, closed afterwards."""
    peer = CallPeer([], [TestPatternTrack(320, 240), SyntheticMicrophoneTrack()])
    try:
        yield peer
    finally:
        await peer.close()


def audio_transceiver(peer: CallPeer):
    return next(t for t in peer.pc.getTransceivers() if t.kind == "audio")


def warning_when_declined(install: Callable[[object], bool], caplog: pytest.LogCaptureFixture) -> str:
    """``install`` (e.g. use_for_audio) given an object aiortc did not build: it must return False, changing
    nothing; what it warned."""
    class Elsewhere:
        pass
    with caplog.at_level(logging.WARNING):
        assert install(Elsewhere()) is False
    return caplog.text
