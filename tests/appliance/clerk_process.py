"""A clerk's side of a call in a process of its own (real aiortc), for tests whose kiosk is made slow: a
slow kiosk must not slow the clerk, as it does not on a real network.

    python -m tests.appliance.clerk_process INTERVAL_S WINDOW_S

Reads the kiosk's offer (one JSON string) from stdin, writes the answer (one JSON string) to stdout, then
sends a moving picture (320x240, 15 fps) and a tone, and answers the kiosk's ICE checks as Chromium does
(its own consent with the given timing: appliance/call/consent.py). Prints its connection state to stderr
when it changes; ends when stdin closes (the test is done or gone).
"""
from __future__ import annotations

import asyncio
import json
import sys

from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

from appliance.call.consent import ConsentTiming, use_patient_consent
from appliance.hardware.fake.camera import TestPatternTrack
from appliance.hardware.fake.microphone import SyntheticMicrophoneTrack


async def main(timing: ConsentTiming) -> None:
    loop = asyncio.get_running_loop()
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))  # no STUN server: loopback only
    pc.addTrack(TestPatternTrack(320, 240, 15))
    pc.addTrack(SyntheticMicrophoneTrack())
    pc.on("connectionstatechange", lambda: print(pc.connectionState, file=sys.stderr, flush=True))
    offer = json.loads(await loop.run_in_executor(None, sys.stdin.readline))
    use_patient_consent(pc, timing)
    await pc.setRemoteDescription(RTCSessionDescription(offer, "offer"))
    await pc.setLocalDescription(await pc.createAnswer())
    print(json.dumps(pc.localDescription.sdp), flush=True)
    await loop.run_in_executor(None, sys.stdin.read)  # until the test closes stdin
    await pc.close()


if __name__ == "__main__":
    asyncio.run(main(ConsentTiming(interval_s=float(sys.argv[1]), window_s=float(sys.argv[2]))))
