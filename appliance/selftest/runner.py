"""Runs the self-test: starts the devices, checks item by item, reports, and shows it all on the page.

The controller (appliance/controller/machine.py) owns the screen: it calls :meth:`Selftest.start`
when it enters ``Screen.SELFTEST``, hands presses over with :meth:`Selftest.input`, and takes
back what this posts: ``selftest_view`` (a new picture of the test for the page) and
``selftest_end`` (back to idle). This module never touches the controller's state.
"""
from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from appliance.selftest import tone
from appliance.selftest.probes import Probes
from protocol import fleet as f

log = logging.getLogger(__name__)

LEVEL_EVERY_S = 0.1  # how often the level meter moves on the page


@dataclasses.dataclass(frozen=True)
class SelftestTimes:
    camera_s: float = 5.0       # the first picture must come within this
    microphone_s: float = 3.0   # the first 200 ms of sound must come within this
    quiet_s: float = 0.5        # listened to before the tone, to know the room without it
    tone_s: float = 1.0
    echo_s: float = 0.3         # the tone's tail still on its way through the room and the sound card
    button_s: float = 15.0      # "press the call button now"
    results_s: float = 120.0    # the results stay this long (camera and meter live), then back to idle


class Selftest:
    """One unit's self-test. ``devices`` is the unit's DeviceBook (appliance/fleet/devices.py), if any."""

    def __init__(self, *, hardware, self_view, send: Callable[[f.SelftestReport], Awaitable[None]],
                 post: Callable[[str, Any], None], is_online: Callable[[], bool], probes: Probes,
                 devices=None, times: SelftestTimes = SelftestTimes(),
                 can_send: Callable[[], bool] | None = None) -> None:
        """``is_online``: central answers (the self-test's item); ``can_send``: the kiosk's link to
        central is up now (default: ``is_online``). A result that could not be sent waits for
        :meth:`connected`."""
        self.hardware, self.self_view, self.probes, self.devices = hardware, self_view, probes, devices
        self.times = times
        self._send, self._post, self._is_online = send, post, is_online
        self._can_send = can_send or is_online
        self.unsent: f.SelftestReport | None = None
        self._sending: set[asyncio.Task] = set()
        self._task: asyncio.Task | None = None
        self._view: dict = {}
        self._pressed = asyncio.Event()
        self._leave = asyncio.Event()
        self._tracks: list[MediaStreamTrack] = []
        self._helpers: list[asyncio.Task] = []
        self.last_report: f.SelftestReport | None = None

    # == the controller's side ======================================================================
    def start(self, started_by: str) -> dict:
        """Begin (again); returns the first picture of the test for the screen."""
        self.stop()
        self._pressed, self._leave = asyncio.Event(), asyncio.Event()
        self._view = {"started_by": started_by, "items": [{"item": name, "state": "checking", "fault": None}
                                                          for name in f.SELFTEST_ITEMS],
                      "level": 0.0, "asking": None, "done": False}
        self._task = asyncio.get_running_loop().create_task(self._run(started_by), name="selftest")
        return self.view

    def input(self, kind: str) -> None:
        """A press, long press or touch on the self-test screen."""
        if kind in ("press", "long_press") and self._view.get("asking") == "press":
            self._pressed.set()
        elif self._view.get("done") and kind in ("press", "long_press", "cancel"):
            self._leave.set()
        elif kind in ("long_press", "cancel"):  # leaving half-way: nothing is reported
            self.stop()
            self._post("selftest_end", None)

    def stop(self) -> None:
        """Stop at once (the controller left the screen, or the service stops)."""
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
        self._release()

    @property
    def view(self) -> dict:
        return {**self._view, "items": [dict(i) for i in self._view.get("items", [])]}

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    # == the test ===================================================================================
    async def _run(self, started_by: str) -> None:
        leaving = False
        self._bypass_echo(True)
        try:
            camera = asyncio.ensure_future(self._camera())
            self._helpers.append(camera)  # a stop before the camera is up must not leave it starting
            microphone = Microphone(self.hardware.microphone, self._show_level)
            self._tracks_from(microphone)
            self._set("enrolment", *(("pass", None) if self.probes.enrolled() else ("fail", "not_enrolled")))
            self._set("clock", *(("pass", None) if await self.probes.clock() else ("fail", "clock_unsynchronised")))
            self._set("network", *(("pass", None) if await self.probes.network() else ("fail", "network_down")))
            self._set("central", *(("pass", None) if self._is_online() else ("fail", "central_unreachable")))
            mic_ok = await self._check_microphone(microphone)
            await self._check_sound_loop(microphone) if mic_ok else self._set("sound_loop", "skipped", None)
            await camera
            await self._check_button()
            await self._report(started_by)
            self._show(done=True, asking=None)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.times.results_s):
                    await self._leave.wait()
            leaving = True
        except asyncio.CancelledError:
            raise
        except Exception:  # a self-test that breaks must still give the screen back
            log.exception("the self-test failed")
            leaving = True
        finally:
            self._release()
            if leaving:
                self._post("selftest_end", None)

    async def _camera(self) -> None:
        camera = self.hardware.camera
        try:
            track = camera.track()
        except Exception as exc:  # noqa: BLE001 - any way a camera refuses to start is a failed camera
            log.warning("camera did not start: %s", type(exc).__name__)
            self._set("camera", "fail", "camera_failed")
            return
        shown = self.self_view.attach(track, encoded=camera.encoded)  # the picture on the self-test screen
        self._tracks.append(shown)
        first = asyncio.get_running_loop().create_future()
        self._helpers.append(asyncio.ensure_future(_drain(shown, first)))
        try:
            async with asyncio.timeout(self.times.camera_s):
                await asyncio.shield(first)
            self._set("camera", "pass", None, device_name(camera))
        except (TimeoutError, MediaStreamError):
            self._set("camera", "fail", "camera_failed", device_name(camera))

    async def _check_microphone(self, microphone: Microphone) -> bool:
        name = device_name(self.hardware.microphone)
        if microphone.error is None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.times.microphone_s):
                    await microphone.enough.wait()
        if not microphone.enough.is_set() or microphone.ended:
            self._set("microphone", "fail", "microphone_failed", name)
            return False
        if not microphone.heard_anything:
            self._set("microphone", "fail", "microphone_silent", name)
            return False
        self._set("microphone", "pass", None, name)
        return True

    async def _check_sound_loop(self, microphone: Microphone) -> None:
        loop = asyncio.get_running_loop()
        await asyncio.sleep(self.times.quiet_s)
        before = microphone.since(microphone.count - int(self.times.quiet_s * tone.RATE))
        tone_start = microphone.count
        speaker = self.hardware.speaker
        started = loop.time()
        try:
            for i, frame in enumerate(tone.tone_frames(self.times.tone_s)):
                await speaker.play(frame)
                # paced like a call's audio: a speaker that takes frames at once must not get them all at once
                await asyncio.sleep(max(0.0, started + (i + 1) * tone.FRAME_SAMPLES / tone.RATE - loop.time()))
        except Exception as exc:  # noqa: BLE001 - a sound card that refuses the tone is a failed speaker
            log.warning("speaker refused the test tone: %s", type(exc).__name__)
            self._set("sound_loop", "fail", "speaker_failed", device_name(speaker))
            return
        await asyncio.sleep(self.times.echo_s)
        during = microphone.since(tone_start)
        if microphone.ended:
            self._set("sound_loop", "fail", "microphone_failed", device_name(speaker))
        elif tone.tone_heard(before, during):
            self._set("sound_loop", "pass", None, device_name(speaker))
        else:
            self._set("sound_loop", "fail", "tone_not_heard", device_name(speaker))

    async def _check_button(self) -> None:
        self._pressed.clear()
        self._set("button", "waiting", None)
        self._show(asking="press")
        try:
            async with asyncio.timeout(self.times.button_s):
                await self._pressed.wait()
            self._set("button", "pass", None)
        except TimeoutError:
            self._set("button", "fail", "button_not_pressed")
        self._show(asking=None)

    async def _report(self, started_by: str) -> None:
        items = [f.SelftestItem(item=i["item"], result=i["state"] if i["state"] in ("pass", "fail") else "skipped",
                                fault=i["fault"], device=i.get("device"))
                 for i in self._view["items"]]
        report = f.SelftestReport(type="kiosk.selftest", started_by=started_by, items=items)
        self.last_report = report
        if self.devices is not None:
            record_devices(self.devices, items)
        self.unsent = report
        await self._send_unsent()
        log.info("self-test done: %s", ", ".join(f"{i.item} {i.result}" for i in items))

    def connected(self) -> None:
        """The kiosk's link to central is (back) up: send a result central has not had yet."""
        if self.unsent is not None:
            task = asyncio.get_running_loop().create_task(self._send_unsent())
            self._sending.add(task)  # held until done: the loop keeps only weak references
            task.add_done_callback(self._sending.discard)

    async def _send_unsent(self) -> None:
        report = self.unsent
        if report is not None and self._can_send():
            self.unsent = None
            await self._send(report)

    # == helpers =====================================================================================
    def _tracks_from(self, microphone: Microphone) -> None:
        if microphone.track is not None:
            self._tracks.append(microphone.track)
            self._helpers.append(microphone.task)

    def _set(self, item: str, state: str, fault: str | None, device: str | None = None) -> None:
        items = [dict(i, state=state, fault=fault, **({"device": device} if device else {}))
                 if i["item"] == item else i for i in self._view["items"]]
        self._show(items=items)

    def _show_level(self, value: float) -> None:
        self._show(level=round(value, 2))

    def _show(self, **changes: Any) -> None:
        self._view = {**self._view, **changes}
        self._post("selftest_view", self.view)

    def _bypass_echo(self, bypassed: bool) -> None:
        """The echo canceller would remove the test tone from what the microphone hears: off meanwhile."""
        echo = getattr(self.hardware, "echo", None)
        if echo is not None:
            echo.bypassed = bypassed

    def _release(self) -> None:
        """Camera and microphone off, the page's picture gone, the echo canceller back on."""
        self._bypass_echo(False)
        for task in self._helpers:
            task.cancel()
        for track in self._tracks:
            track.stop()
        self._helpers, self._tracks = [], []
        self.self_view.detach()


class Microphone:
    """The microphone while the self-test runs: the level meter, and the last seconds for the tone check."""

    KEEP_S = 4.0

    def __init__(self, device, on_level: Callable[[float], None]) -> None:
        self.on_level = on_level
        self.enough = asyncio.Event()   # 200 ms of sound arrived
        self.count = 0                  # samples heard so far
        self.heard_anything = False     # a dead converter delivers exact zeros
        self.ended = False
        self.error: str | None = None
        self._chunks: collections.deque[tuple[int, np.ndarray]] = collections.deque()
        self.track: MediaStreamTrack | None = None
        self.task: asyncio.Task | None = None
        try:
            self.track = device.track()
        except Exception as exc:  # noqa: BLE001 - any way a microphone refuses to start is a failed one
            self.error = type(exc).__name__
            log.warning("microphone did not start: %s", self.error)
            return
        self.task = asyncio.ensure_future(self._listen())

    async def _listen(self) -> None:
        loop = asyncio.get_running_loop()
        next_level = 0.0
        try:
            while True:
                frame = await self.track.recv()
                samples = frame.to_ndarray().reshape(-1)
                self._chunks.append((self.count, samples))
                self.count += samples.size
                while self._chunks and self._chunks[0][0] < self.count - self.KEEP_S * tone.RATE:
                    self._chunks.popleft()
                self.heard_anything = self.heard_anything or bool(samples.any())
                if self.count >= tone.RATE // 5:
                    self.enough.set()
                if loop.time() >= next_level:
                    next_level = loop.time() + LEVEL_EVERY_S
                    self.on_level(tone.level(samples))
        except MediaStreamError:
            self.ended = True

    def since(self, start: int) -> np.ndarray:
        """The samples heard from sample number ``start`` on."""
        parts = [chunk[max(0, start - at):] for at, chunk in self._chunks if at + chunk.size > start]
        return np.concatenate(parts) if parts else np.zeros(0, np.int16)


async def _drain(track: MediaStreamTrack, first: asyncio.Future) -> None:
    """Pull the camera's pictures (the page gets each through the self-view tee)."""
    try:
        while True:
            await track.recv()
            if not first.done():
                first.set_result(None)
    except MediaStreamError as exc:
        if not first.done():
            first.set_exception(exc)


def device_name(device) -> str | None:
    name = getattr(device, "name", None) or getattr(device, "model", None) or getattr(device, "device", None)
    return str(name)[:120] if name else None


DEVICE_OF_ITEM = {"camera": "camera", "microphone": "microphone", "sound_loop": "speaker", "button": "button"}
# The tone check speaks for the speaker only when the microphone worked; its faults that are the speaker's.
SPEAKER_FAULTS = ("speaker_failed", "tone_not_heard")


def record_devices(devices, items: list[f.SelftestItem]) -> None:
    """What the self-test learned about each device, for the health report."""
    for item in items:
        device = DEVICE_OF_ITEM.get(item.item)
        if device is None or item.result == "skipped":
            continue
        if device == "speaker" and item.result == "fail" and item.fault not in SPEAKER_FAULTS:
            continue
        if item.result == "pass":
            devices.ok(device, "selftest", name=item.device)
        else:
            devices.set(device, "failed", "selftest", fault=item.fault, name=item.device)
