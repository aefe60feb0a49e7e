"""A kiosk in a call with three: its CPU and upload with two remote peers against one (mesh).

The kiosk is the appliance's own MeshCall in a process of its own (bench/_three_way.py), its camera the
Pi 4 passthrough path: H.264 access units from the stand-in hardware encoder (libx264 in a third process,
1280x720 at 30 fps, 1.5 Mbit/s, as hardware.pi.camera configures the Pi's encoder), so the kiosk process's
CPU is what a Pi 4 spends. The clerk and the guest are aiortc peers in this process, each sending a
640x360 VP8 picture at 15 fps and an Opus tone, as a browser would; what they receive is taken still
encoded (not decoded), so this process stays light. Over loopback in the bench's network namespace.

The call runs with the clerk alone, then with a guest added, then without again, for ``--tw-rounds``
rounds; each window is ``--tw-seconds`` long after a settling time. CPU = utime + stime of the kiosk
process (all threads); upload = RTP bytes the kiosk's peer connections sent. The kiosk keeps the call's upload
within the product's default budget (appliance/call/upload.py: with a guest each copy of the picture gets its
share, and the stand-in camera's encoder sends, and is padded to, the bitrate the call sets);
``--tw-upload-kbit-s 20000`` measures the call without that limit.

    three_way_kiosk_cpu_ratio                    CPU with two remote peers / with one (median of the
                                                 rounds; Pi 4 passthrough; target <= 1.3)
    three_way_kiosk_cpu_s_per_min.one_peer       the kiosk's CPU with the clerk alone
    three_way_kiosk_cpu_s_per_min.two_peers      ... with the clerk and a guest
    three_way_kiosk_upload_kbit_s.one_peer       what the kiosk sends, all peers together
    three_way_kiosk_upload_kbit_s.two_peers
    three_way_kiosk_upload_kbit_s.per_peer.one_peer    ... what each peer gets (picture and voice)
    three_way_kiosk_upload_kbit_s.per_peer.two_peers
    three_way_kiosk_cpu_ratio.vp8                the same ratio when the kiosk encodes VP8 itself (once)

With ``--only three_way`` the visit from home's pick-up to first frame follows (bench/home_pickup.py:
``home_pickup_first_frame_ms``), so one run gives every figure of the virtual office's calls.
"""
from __future__ import annotations

import asyncio
import os
import statistics

from bench import home_pickup
from bench._common import BenchError, emit, note, proc_cpu_s
from bench._kiosk_call.kiosk_process import ChildProcess
from protocol.fleet import DEFAULT_CALL_UPLOAD_KBIT_S

NAME = "three_way"
READY_TIMEOUT_S = 60.0
CONNECT_TIMEOUT_S = 30.0


def add_arguments(parser) -> None:
    parser.add_argument("--tw-seconds", type=float, default=None,
                        help="three_way: seconds per measured window (default 20; 8 with --quick)")
    parser.add_argument("--tw-rounds", type=int, default=None,
                        help="three_way: rounds of one peer, then two (default 3; 2 with --quick)")
    parser.add_argument("--tw-upload-kbit-s", type=int, default=None,
                        help="three_way: the kiosk's call upload budget (default: the product's default, "
                             f"{DEFAULT_CALL_UPLOAD_KBIT_S}; 20000 leaves the picture at the camera's bitrate)")


class Remote:
    """A clerk's or guest's browser, played by aiortc: sends a picture and a tone, takes what comes encoded."""

    def __init__(self) -> None:
        from aiortc import RTCPeerConnection

        from appliance.hardware.fake.camera import TestPatternTrack
        from appliance.hardware.fake.microphone import SyntheticMicrophoneTrack

        self.pc = RTCPeerConnection()
        self.sent = [TestPatternTrack(640, 360, fps=15), SyntheticMicrophoneTrack(660)]
        for track in self.sent:
            self.pc.addTransceiver(track, direction="sendrecv")
        self.tasks: list[asyncio.Task] = []
        self.pc.on("track", self._take)

    def _take(self, track) -> None:
        from appliance.kiosk.video_feed import receiver_for, tap_encoded_frames

        if track.kind == "video" and tap_encoded_frames(receiver_for(self.pc, track), lambda codec, frame: None):
            return  # the kiosk's picture arrives and is thrown away undecoded

        async def drain() -> None:
            try:
                while True:
                    await track.recv()
            except Exception:  # noqa: BLE001 - the track ended with the call
                pass
        self.tasks.append(asyncio.get_running_loop().create_task(drain()))

    async def answer(self, offer: str) -> str:
        from aiortc import RTCSessionDescription

        await self.pc.setRemoteDescription(RTCSessionDescription(offer, "offer"))
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        return self.pc.localDescription.sdp

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        await self.pc.close()
        for track in self.sent:
            track.stop()


class Kiosk(ChildProcess):
    """The parent's handle on the kiosk process (bench/_three_way.py)."""

    def __init__(self, mode: str, upload_kbit_s: int) -> None:
        import bench._three_way as process

        super().__init__(process.kiosk_main, (mode, upload_kbit_s), "bench-three-way-kiosk")

    async def join(self, who: str, remote: Remote) -> None:
        mark = self.mark()
        self.command("offer", who)
        offer = await self.wait("offer", mark, CONNECT_TIMEOUT_S, who)
        self.command("answer", who, await remote.answer(offer[2]))
        await self.wait("connected", mark, CONNECT_TIMEOUT_S, who)

    async def remove(self, who: str) -> None:
        mark = self.mark()
        self.command("remove", who)
        await self.wait("removed", mark, CONNECT_TIMEOUT_S, who)

    async def sent_bytes(self) -> dict[str, int]:
        """Bytes sent so far to each peer."""
        mark = self.mark()
        self.command("stats")
        return (await self.wait("stats", mark, 10))[1]


async def window(kiosk: Kiosk, seconds: float) -> tuple[float, float, float]:
    """(CPU seconds per minute, upload kbit/s, upload kbit/s per peer) of the kiosk over the next ``seconds``."""
    cpu0, bytes0, t0 = proc_cpu_s(kiosk.pid), await kiosk.sent_bytes(), asyncio.get_running_loop().time()
    await asyncio.sleep(seconds)
    cpu1, bytes1, t1 = proc_cpu_s(kiosk.pid), await kiosk.sent_bytes(), asyncio.get_running_loop().time()
    sent = [(bytes1[who] - bytes0.get(who, 0)) * 8 / 1000 / (t1 - t0) for who in bytes1]
    return (cpu1 - cpu0) * 60 / (t1 - t0), sum(sent), statistics.mean(sent)


async def measure(mode: str, seconds: float, rounds: int, settle: float, upload: int) -> dict[str, list[float]]:
    kiosk, clerk = Kiosk(mode, upload), Remote()
    found: dict[str, list[float]] = {key: [] for key in ("one_cpu", "two_cpu", "one_kbit", "two_kbit",
                                                         "one_each", "two_each")}
    try:
        await kiosk.start(READY_TIMEOUT_S)
        await kiosk.join("clerk", clerk)
        await asyncio.sleep(settle)
        for number in range(rounds):
            cpu, kbit, each = await window(kiosk, seconds)
            found["one_cpu"].append(cpu)
            found["one_kbit"].append(kbit)
            found["one_each"].append(each)
            guest = Remote()
            who = f"g-guest{number:04d}"
            await kiosk.join(who, guest)
            await asyncio.sleep(settle)
            cpu, kbit, each = await window(kiosk, seconds)
            found["two_cpu"].append(cpu)
            found["two_kbit"].append(kbit)
            found["two_each"].append(each)
            await kiosk.remove(who)
            await guest.close()
            await asyncio.sleep(settle)
            note(f"three_way {mode}: round {number + 1}: one peer {found['one_cpu'][-1]:.1f} s/min "
                 f"{found['one_kbit'][-1]:.0f} kbit/s, two peers {found['two_cpu'][-1]:.1f} s/min "
                 f"{found['two_kbit'][-1]:.0f} kbit/s ({found['two_each'][-1]:.0f} each), ratio "
                 f"{found['two_cpu'][-1] / found['one_cpu'][-1]:.2f}; load {os.getloadavg()[0]:.1f}")
    finally:
        kiosk.stop()
        await clerk.close()
    return found


def run(args) -> int:  # noqa: ANN001 - the bench runner's namespace
    seconds = args.tw_seconds or (8.0 if args.quick else 20.0)
    rounds = args.tw_rounds or (2 if args.quick else 3)
    settle = 3.0 if args.quick else 5.0
    upload = args.tw_upload_kbit_s or DEFAULT_CALL_UPLOAD_KBIT_S

    async def main() -> dict[str, dict[str, list[float]]]:
        return {mode: await measure(mode, seconds, rounds, settle, upload) for mode in ("passthrough", "vp8")}
    try:
        results = asyncio.run(main())
    except (BenchError, TimeoutError) as exc:
        note(f"three_way: {exc}")
        return 2
    for mode, found in results.items():
        ratios = [two / one for one, two in zip(found["one_cpu"], found["two_cpu"]) if one > 0]
        suffix = "" if mode == "passthrough" else f".{mode}"
        emit(f"three_way_kiosk_cpu_ratio{suffix}", statistics.median(ratios), "ratio")
        emit(f"three_way_kiosk_cpu_s_per_min{suffix}.one_peer", statistics.median(found["one_cpu"]), "s")
        emit(f"three_way_kiosk_cpu_s_per_min{suffix}.two_peers", statistics.median(found["two_cpu"]), "s")
        emit(f"three_way_kiosk_upload_kbit_s{suffix}.one_peer", statistics.median(found["one_kbit"]), "kbit/s")
        emit(f"three_way_kiosk_upload_kbit_s{suffix}.two_peers", statistics.median(found["two_kbit"]), "kbit/s")
        emit(f"three_way_kiosk_upload_kbit_s{suffix}.per_peer.one_peer", statistics.median(found["one_each"]), "kbit/s")
        emit(f"three_way_kiosk_upload_kbit_s{suffix}.per_peer.two_peers", statistics.median(found["two_each"]),
             "kbit/s")
    note(f"three_way: {rounds} rounds of {seconds:g} s per window, call upload budget {upload} kbit/s; "
         f"machine load {os.getloadavg()[0]:.1f}")
    # A run of every benchmark (no --only) measures home_pickup on its own: not twice.
    if args.only and home_pickup.NAME not in args.only:
        return home_pickup.run(args)
    return 0
