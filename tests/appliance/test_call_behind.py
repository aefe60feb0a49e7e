"""A kiosk too slow for the clerk's packets keeps its call: it drops stale media, reads the clerk's answers
to its ICE consent checks in time, and says so in the journal once (appliance/call/catch_up.py).

Real aiortc on both sides over loopback; the clerk in a process of its own (tests/appliance/clerk_process.py),
so slowing the kiosk does not slow the clerk. The kiosk is made slow as an emulated or overloaded one is:
each turn of its event loop costs 25 ms more (fewer turns a second than the clerk sends packets, and
asyncio reads one packet per turn), and the loop stalls for 1 s every 3 s. Without catch_up.py the
clerk's answers to the consent checks wait behind seconds of media and the call fails. Consent timings
shortened as in test_call_consent.py: a check every 0.2 s, consent for 3 s.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sys
import time
from pathlib import Path

from appliance.call.audio_buffer import DECODER_QUEUE, DecodeBacklog, PlayBacklog
from appliance.call.catch_up import STALE_S, is_media
from appliance.call.consent import ConsentTiming
from appliance.call.peer import CallPeer
from appliance.hardware.fake.camera import TestPatternTrack
from appliance.hardware.fake.microphone import SyntheticMicrophoneTrack
from tests.browser import require_isolated_network

TIMING = ConsentTiming(interval_s=0.2, window_s=3.0)
TURN_S = 0.025
STALL_S, STALL_EVERY_S = 1.0, 3.0
REPO = Path(__file__).resolve().parents[2]


def slow_down(turn_s: float, stall_s: float, stall_every_s: float):
    """Every turn of the event loop costs ``turn_s`` more, as on a kiosk whose CPU is short: each wait for
    the sockets hands the interpreter to the other threads (encoder, audio, echo canceller), and getting it
    back takes a while. And every ``stall_every_s`` the loop stalls for ``stall_s`` (a slow SD card, a key
    frame to encode). Returns the undo."""
    loop = asyncio.get_running_loop()
    selector = loop._selector
    select = selector.select

    def slow(timeout=None):
        events = select(timeout)
        time.sleep(turn_s)
        return events

    def stall():
        time.sleep(stall_s)
        timer[0] = loop.call_later(stall_every_s, stall)
    selector.select = slow
    timer = [loop.call_later(stall_every_s, stall)]

    def undo():
        vars(selector).pop("select", None)
        timer[0].cancel()
    return undo


@contextlib.asynccontextmanager
async def call_with_clerk_process():
    """A connected call: the kiosk's CallPeer here, the clerk in tests/appliance/clerk_process.py.
    Yields the kiosk and the states it reported; closes both."""
    require_isolated_network()
    states: list[str] = []
    connected = asyncio.Event()

    def on_state(state: str) -> None:
        states.append(state)
        connected.set()
    kiosk = CallPeer([], [TestPatternTrack(320, 240, 5), SyntheticMicrophoneTrack()], on_state=on_state,
                     ice_networks=("127.0.0.0/8",), consent=TIMING)
    clerk = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.appliance.clerk_process", str(TIMING.interval_s), str(TIMING.window_s),
        cwd=REPO, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
    try:
        clerk.stdin.write((json.dumps(await kiosk.offer()) + "\n").encode())
        async with asyncio.timeout(30):
            await kiosk.accept_answer(json.loads(await clerk.stdout.readline()))
            await connected.wait()
        assert states == ["connected"]
        yield kiosk, states
    finally:
        await kiosk.close()
        clerk.stdin.close()
        try:
            async with asyncio.timeout(10):
                await clerk.wait()
        except TimeoutError:
            clerk.kill()
            await clerk.wait()


async def test_a_kiosk_too_slow_for_the_clerks_packets_keeps_its_call(caplog):
    caplog.set_level(logging.INFO, logger="appliance.call")
    async with call_with_clerk_process() as (kiosk, states):
        undo = slow_down(TURN_S, STALL_S, STALL_EVERY_S)
        try:
            await asyncio.sleep(4 * TIMING.window_s)  # consent long expired if the answers were stuck behind media
        finally:
            undo()

        assert states == ["connected"] and kiosk.pc.connectionState == "connected"
        consent = [c for c in kiosk.consent if c.checks]
        assert len(consent) == 1 and not consent[0].expired and consent[0].answered >= 10
        catch_up = kiosk.catch_up
        assert catch_up.sockets >= 1 and catch_up.dropped > 0 and catch_up.longest_wait_s > STALE_S
        assert catch_up.media > catch_up.dropped  # it still plays what it can
        behind = [r.getMessage() for r in caplog.records if r.name == "appliance.call.catch_up"]
        assert len(behind) == 1 and "cannot keep up" in behind[0]  # once, not per packet
    totals = [r.getMessage() for r in caplog.records if "received media packets were dropped" in r.getMessage()]
    assert len(totals) == 1 and f"{catch_up.dropped} of {catch_up.media}" in totals[0]


async def test_a_kiosk_that_keeps_up_drops_nothing():
    async with call_with_clerk_process() as (kiosk, states):
        await asyncio.sleep(TIMING.window_s)
        assert states == ["connected"]
        assert kiosk.catch_up.media >= 100 and kiosk.catch_up.dropped == 0
        assert "dropped" not in (kiosk.catch_up.summary() or "")
        voice = next(t.receiver for t in kiosk.pc.getTransceivers() if t.kind == "audio")  # bounded on its way
        assert isinstance(getattr(voice, DECODER_QUEUE), DecodeBacklog) and isinstance(voice.track._queue, PlayBacklog)


def test_only_media_packets_are_ever_dropped():
    rtp = bytes([0x80, 111]) + bytes(10)            # Opus
    rtcp = bytes([0x81, 200]) + bytes(10)           # sender report
    stun = bytes([0x00, 0x01]) + bytes(18)          # binding request
    dtls = bytes([22, 0xFE, 0xFD]) + bytes(10)      # handshake record
    assert is_media(rtp) and is_media(bytes([0x40, 0x00, 0x00, 12]) + rtp)  # also inside TURN ChannelData
    assert not any(is_media(p) for p in (rtcp, stun, dtls, bytes([0x40, 0x00, 0x00, 12]) + rtcp, b"", b"\x80"))
