"""A real call (the kiosk's aiortc peer and a second aiortc peer as the clerk, over loopback) with the
appliance's logging set up as the service does: nothing in the log names a peer's address or port."""
from __future__ import annotations

import asyncio
import logging
import re

import pytest
from aiortc import RTCPeerConnection, RTCSessionDescription

from appliance.call.peer import CallPeer
from appliance.hardware.fake.camera import TestPatternTrack
from appliance.hardware.fake.microphone import SyntheticMicrophoneTrack
from appliance.service import systemd
from tests.browser import require_isolated_network


class Everything(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record):
        self.lines.append(f"{record.name}: {record.getMessage()}")


@pytest.fixture
def service_logging():
    root = logging.getLogger()
    saved = root.handlers[:], root.level, {n: logging.getLogger(n).level for n in systemd.QUIET_LOGGERS}
    systemd.setup_logging()  # INFO, as python -m appliance does
    captured = Everything()
    root.addHandler(captured)
    yield captured
    root.handlers[:], level, levels = saved
    root.setLevel(level)
    for name, old in levels.items():
        logging.getLogger(name).setLevel(old)


async def test_a_call_logs_no_peer_address(service_logging):
    require_isolated_network()
    state = asyncio.get_running_loop().create_future()
    kiosk = CallPeer([], [TestPatternTrack(320, 240), SyntheticMicrophoneTrack()],
                     on_state=lambda s: state.done() or state.set_result(s))
    clerk = RTCPeerConnection()
    try:
        @clerk.on("track")
        def answer_with(track):
            clerk.addTrack(track)  # the clerk sends back what it gets
        await clerk.setRemoteDescription(RTCSessionDescription(await kiosk.offer(), "offer"))
        await clerk.setLocalDescription(await clerk.createAnswer())
        await kiosk.accept_answer(clerk.localDescription.sdp)
        async with asyncio.timeout(20):
            assert await state == "connected"
        await asyncio.sleep(0.5)  # checks, nominations and keep-alives go on after connecting
        addresses = set(re.findall(r"a=candidate:\S+ \d \S+ \d+ (\S+) (\d+)", clerk.localDescription.sdp
                                   + kiosk.pc.localDescription.sdp))
        assert addresses  # what must not show up
    finally:
        await kiosk.close()
        await clerk.close()
    leaks = [line for line in service_logging.lines for address, port in addresses
             if address in line or re.search(rf"\b{port}\b", line)]
    assert leaks == []
