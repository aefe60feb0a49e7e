"""The kiosk of ``bench.slow_kiosk``, in a process of its own that moves itself into a CPU-limited cgroup
once its call connected:

    python -m bench._slow_kiosk READING CGROUP SECONDS

READING: ``catch_up`` (the appliance as it is, appliance/call/catch_up.py) or ``asyncio`` (the call's
sockets read as asyncio does, one datagram per turn of the loop). CGROUP: the cgroup directory to join
(its limit set by the parent). The kiosk is the appliance's CallPeer with the boot test's camera settings
(a 320x180 test pattern at 15 fps, VP8) and a tone; the clerk's voice plays to a speaker paced like a sound
card and the clerk's picture goes, undecoded, to the kiosk page's feed. The clerk is
tests/appliance/clerk_process.py (320x240 at 15 fps and a tone), as patient with consent as Chromium.
Prints one JSON object with the figures when done.
"""
from __future__ import annotations

import asyncio
import json
import os
import sys
import time

from appliance.call import peer as peer_module
from appliance.call.catch_up import CatchUp
from appliance.call.consent import RFC_7675
from appliance.call.peer import CallPeer
from appliance.call.receiver_tap import receiver_for
from appliance.hardware.fake.backend import MemorySpeaker
from appliance.hardware.fake.camera import TestPatternTrack
from appliance.hardware.fake.microphone import SyntheticMicrophoneTrack
from appliance.kiosk.video_feed import ClerkVideoFeed

SAMPLE_S = 1.0


def voice_waiting(receiver) -> int:
    """Packets of the clerk's voice waiting for aiortc's decoder thread, plus decoded frames waiting for the
    speaker (each 20 ms)."""
    decoder = getattr(receiver, "_RTCRtpReceiver__decoder_queue", None)
    track = getattr(receiver, "track", None)
    return (decoder.qsize() if decoder is not None else 0) + (track._queue.qsize() if track is not None else 0)


def join(cgroup: str) -> None:
    with open(os.path.join(cgroup, "cgroup.procs"), "w", encoding="ascii") as f:
        f.write(str(os.getpid()))


def socket_drops(pid: int) -> int:
    """Datagrams the kernel dropped because this process's UDP sockets were full (/proc/net/udp)."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.add(link[8:-1])
    drops = 0
    for name in ("/proc/net/udp", "/proc/net/udp6"):
        with open(name, encoding="ascii") as f:
            next(f)
            drops += sum(int(p[12]) for p in map(str.split, f) if p[9] in inodes)
    return drops


async def main(reading: str, cgroup: str, seconds: float) -> dict:
    if reading == "asyncio":
        peer_module.use_catch_up = lambda pc: CatchUp()  # reads no socket: asyncio's own reading stays
    states: list[str] = []
    connected, failed = asyncio.Event(), asyncio.Event()

    def on_state(state: str) -> None:
        states.append(state)
        (failed if state == "failed" else connected).set()
    feed, speaker = ClerkVideoFeed(), MemorySpeaker()
    played = {"s": 0.0}

    async def play(track) -> None:
        start = None
        while True:
            frame = await track.recv()
            await speaker.play(frame)
            played["s"] += frame.samples / frame.sample_rate
            start = start or time.monotonic()
            ahead = start + played["s"] - time.monotonic()
            if ahead > 0:  # a sound card takes 20 ms of sound per 20 ms
                await asyncio.sleep(ahead)

    tasks = set()

    def route(track) -> None:
        if track.kind == "video":
            feed.attach(track, receiver_for(kiosk.pc, track))
        else:
            tasks.add(asyncio.get_running_loop().create_task(play(track)))

    kiosk = CallPeer([], [TestPatternTrack(320, 180, 15), SyntheticMicrophoneTrack()], on_remote_track=route,
                     on_state=on_state, ice_networks=("127.0.0.0/8",), consent=RFC_7675)
    clerk = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.appliance.clerk_process", str(RFC_7675.interval_s), str(RFC_7675.window_s),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
    try:
        clerk.stdin.write((json.dumps(await kiosk.offer()) + "\n").encode())
        async with asyncio.timeout(60):
            await kiosk.accept_answer(json.loads(await clerk.stdout.readline()))
            await connected.wait()
        join(cgroup)  # from now on the kiosk has the CPU share the parent set
        started, cpu0, played0 = time.monotonic(), time.process_time(), played["s"]
        backlog = []  # ms of the clerk's voice waiting to be decoded or played, once a second
        receiver = next(t.receiver for t in kiosk.pc.getTransceivers() if t.kind == "audio")
        while time.monotonic() - started < seconds and not failed.is_set():
            try:
                await asyncio.wait_for(failed.wait(), SAMPLE_S)
            except TimeoutError:
                backlog.append(20 * voice_waiting(receiver))
        took = time.monotonic() - started
        consent = [c for c in kiosk.consent if c.checks]
        catch_up = kiosk.catch_up
        return {
            "reading": reading, "seconds": round(took, 1), "states": states,
            "connected_to_the_end": states == ["connected"],
            "cpu_s_per_min": round((time.process_time() - cpu0) / took * 60, 2),
            "consent_checks": sum(c.checks for c in consent), "consent_answered": sum(c.answered for c in consent),
            "consent_slowest_s": round(max((c.slowest_s for c in consent), default=0.0), 2),
            "kernel_drops": socket_drops(os.getpid()),
            "media_read": catch_up.media, "media_dropped_stale": catch_up.dropped,
            "longest_wait_s": round(catch_up.longest_wait_s, 2),
            "clerk_voice_played_pct": round(100 * (played["s"] - played0) / took, 1),
            "voice_backlog_ms_max": max(backlog, default=0), "voice_backlog_ms_last": backlog[-1] if backlog else 0,
        }
    finally:
        clerk.stdin.close()
        await kiosk.close()
        try:
            async with asyncio.timeout(10):
                await clerk.wait()
        except TimeoutError:
            clerk.kill()
        for task in tasks:
            task.cancel()


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(sys.argv[1], sys.argv[2], float(sys.argv[3])))), flush=True)
