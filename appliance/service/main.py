"""The appliance service: hardware, controller, central session and kiosk page in one process.

Start-up order matters to systemd: READY=1 is sent only once the kiosk page
answers and the controller runs, so the kiosk browser unit (After=, Requires=)
never shows an error page. The watchdog is fed only by the controller itself,
so a wedged event loop or controller gets the unit restarted.
"""
from __future__ import annotations

import asyncio
import dataclasses
import logging
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from werkzeug.serving import BaseWSGIServer, make_server

from appliance.booking.scanner import QrScanner
from appliance.call.devices import open_track
from appliance.call.mesh import MeshCall
from appliance.call.peer import CallPeer, offered_video_codecs
from appliance.call.session import CentralSession
from appliance.call.tls import Trust
from appliance.config import ApplianceConfig
from appliance.controller.machine import Controller, Timeouts
from appliance.controller.view import View
from appliance.fleet.actions import Actions
from appliance.fleet.devices import DeviceBook, count_echo_behind
from appliance.fleet.enrol import Enrolment, enrol_then_connect
from appliance.fleet.health import HealthReporter
from appliance.fleet.image import ImageInfo
from appliance.fleet.settings import RemoteSettings
from appliance.fleet.watch import POLL_S, DeviceWatch
from appliance.hardware.errors import HardwareError
from appliance.hardware.select import Hardware, open_hardware
from appliance.kiosk import create_app
from appliance.kiosk.guest_video import GuestVideoFeeds
from appliance.kiosk.self_view import SelfViewFeed
from appliance.kiosk.video_feed import ClerkVideoFeed, receiver_for
from appliance.selftest.probes import fake_probes, system_probes
from appliance.selftest.runner import Selftest, device_name
from appliance.service import systemd
from appliance.service.bridge import ViewBridge
from appliance.service.power import open_power, open_update_power
from appliance.update.agent import UpdateAgent
from appliance.update.fake_slots import FakeRestart, FakeSlots
from appliance.update.setup import open_slots, trial_checks
from protocol import messages as m
from protocol.fleet import DEFAULT_CALL_UPLOAD_KBIT_S

log = logging.getLogger(__name__)


@dataclass
class Appliance:
    """The running parts; tests reach in through these attributes."""

    config: ApplianceConfig
    hardware: Hardware
    controller: Controller
    session: CentralSession
    bridge: ViewBridge
    page_server: BaseWSGIServer
    clerk_video: ClerkVideoFeed
    tasks: list[asyncio.Task] = field(default_factory=list)
    self_view: SelfViewFeed | None = None
    selftest: Selftest | None = None
    devices: DeviceBook | None = None  # what the self-test and calls learned of the devices (health reports it)
    remote: RemoteSettings | None = None
    stopping: asyncio.Event = field(default_factory=asyncio.Event)  # set by central's "restart"
    health: HealthReporter | None = None
    updates: UpdateAgent | None = None
    watch: DeviceWatch | None = None  # unplugged devices, also between calls
    guest_video: GuestVideoFeeds | None = None  # the pictures of a call's guests (interpreter, colleague)

    @property
    def page_url(self) -> str:
        return f"http://{self.config.kiosk_host}:{self.page_server.server_port}/"

    async def close(self) -> None:
        if self.updates is not None:
            await self.updates.close()
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        if self.selftest is not None:
            self.selftest.stop()
        if self.controller.scanner is not None:
            self.controller.scanner.stop()
        if self.remote is not None:
            self.remote.close()
        await self.controller._close_call()
        self.clerk_video.detach()
        if self.guest_video is not None:
            self.guest_video.detach_all()
        if self.self_view is not None:
            self.self_view.detach()
        await self.session.close()
        self.page_server.shutdown()
        self.hardware.close()


async def start(config: ApplianceConfig, *, hardware: Hardware | None = None,
                timeouts: Timeouts | None = None, devices: DeviceBook | None = None,
                power=None) -> Appliance:
    """``devices``: the unit's DeviceBook (a fresh one if not given); faults in calls and the
    self-test's findings are written there. Without a token the unit first enrols by code.
    ``power``: what reboots the unit (appliance/service/power.py)."""
    loop = asyncio.get_running_loop()
    devices = devices if devices is not None else DeviceBook()
    hardware = hardware or open_hardware(config.hardware, loop=loop)
    count_echo_behind(hardware.microphone, devices)
    systemd.starting("devices open")
    holder: dict = {}

    async def send(message: m.Message) -> None:
        await holder["session"].send(message)

    clerk_video = ClerkVideoFeed()
    guest_video = GuestVideoFeeds()
    self_view = SelfViewFeed()

    def new_call(ice_servers: list[m.IceServer], on_state: Callable[[str], None]) -> MeshCall:
        camera = hardware.camera
        guest_video.detach_all()  # the pictures of the last call's guests
        # Central's setting for sites whose network must see no peer's address: media via TURN only.
        relay_only = remote.current is not None and remote.current.relay_only

        def failed(device: str) -> Callable[[], None]:
            # A camera that fails lets the call go on audio-only, a microphone ends it (the controller decides).
            def report() -> None:
                devices.fault(device, f"{device}_failed")
                on_state(f"{device}_failed")
            return report

        def working(device: str) -> Callable[[], None]:
            return lambda: devices.ok(device, "live", name=device_name(getattr(hardware, device)))

        def video(encoded: bool | None) -> MediaStreamTrack | None:
            # The citizen's own picture: the call sends a tee of the camera track that also hands each
            # frame to the page (no second capture, H.264 passed through unchanged). Stopping the tee
            # at the end of the call stops the camera. See appliance/kiosk/self_view.py.
            track = open_track(lambda: camera.track(encoded=encoded), "camera", failed("camera"),
                               working("camera"))  # decides .encoded
            return track and self_view.attach(track, encoded=camera.encoded)

        camera_track = video(None)  # the camera's preference: H.264 packets where it passes them through
        microphone_track = open_track(hardware.microphone.track, "microphone", failed("microphone"),
                                      working("microphone"))
        tracks = [track for track in (camera_track, microphone_track) if track is not None]
        encoded = camera_track is not None and camera.encoded
        # Frames (for VP8) only if the clerk's browser takes no H.264: appliance/call/peer.py decides.
        peer = CallPeer(ice_servers, tracks, on_remote_track=lambda track: route(call, "clerk", peer, track, on_state),
                        video_codecs=offered_video_codecs(encoded), on_state=on_state,
                        ice_networks=config.ice_networks, frames=(lambda: video(False)) if encoded else None,
                        relay_only=relay_only)

        def new_guest(who: str, shared: list[MediaStreamTrack], codecs: list | None,
                      guest_state: Callable[[str], None]) -> CallPeer:
            # A guest (interpreter, colleague) gets the camera and microphone the clerk gets (appliance/call/mesh.py).
            guest = CallPeer(ice_servers, shared, on_remote_track=lambda track: route(call, who, guest, track, on_state),
                             video_codecs=codecs, on_state=guest_state, ice_networks=config.ice_networks,
                             relay_only=relay_only)
            return guest

        # Central's setting for the site's uplink: a guest's copy of the picture shares it (appliance/call/upload.py).
        upload = remote.current.call_upload_kbit_s if remote.current is not None else DEFAULT_CALL_UPLOAD_KBIT_S
        call = MeshCall(peer, new_guest, upload_kbit_s=upload)
        return call

    def route(call: MeshCall, who: str, peer: CallPeer, track: MediaStreamTrack,
              on_state: Callable[[str], None]) -> None:
        """Pictures to the page (undecoded: the clerk's large, each guest's on their tile), voices to the
        speaker, mixed (the echo canceller hears the mix the speaker played)."""
        if track.kind == "video":
            if who == "clerk":
                clerk_video.attach(track, receiver_for(peer.pc, track))
            else:
                guest_video.attach(who, track, receiver_for(peer.pc, track))
        elif (mix := call.hear(who, track)) is not None:
            appliance.tasks.append(loop.create_task(_play(mix, hardware, devices, on_state), name="speaker"))

    bridge = ViewBridge(loop, lambda kind, value: controller.post(kind, value))
    # Central's settings and actions (appliance/fleet/): the screen follows every view the page gets.
    remote = RemoteSettings(data_dir=config.data_dir, hardware=hardware, languages=config.languages, send=send,
                            devices=devices)

    def publish(view: View) -> None:
        bridge.publish(view)
        remote.view_changed(view)
        if controller.updates is not None:
            controller.updates.view_changed(view)

    controller = Controller(send=send, new_call=new_call, led=hardware.button.led, publish=publish,
                            timeouts=timeouts or Timeouts(media_s=config.call_connect_timeout_s))
    controller.remote, remote.refresh = remote, controller.refresh
    stopping = asyncio.Event()  # set: the service exits and systemd starts it again (Restart=always)
    update_power = power
    power = power or open_power(config.hardware)
    remote.actions = Actions(controller=controller, send=send, power=power, restart=stopping.set)
    remote.start()  # the settings stored last time: location and departments even without network
    def from_session(kind: str, value) -> None:
        controller.post(kind, value)
        if kind == "connected":
            selftest.connected()  # a self-test result central missed while it was away

    session = CentralSession(config.central_url, config.token, from_session, trust=Trust(config.ca_file))
    holder["session"] = session

    def pressed(kind: str) -> None:
        devices.ok("button", "live")  # a press arrived: the button works, whatever an earlier self-test said
        controller.post(kind)

    hardware.button.on_short_press = lambda: pressed("press")
    hardware.button.on_long_press = lambda: pressed("long_press")
    hardware.button.on_selftest_hold = lambda: controller.post("selftest", "button")
    controller.selftest = selftest = Selftest(
        hardware=hardware, self_view=self_view, send=send, post=controller.post,
        # central answers: on the kiosk's link, or (not enrolled yet) on the enrolment link that got a code
        is_online=lambda: controller.view.online or bool(controller.view.enrol and controller.view.enrol.code),
        probes=_probes(config, session), devices=devices, can_send=session.connected.is_set)
    # "I have an appointment": the booking's QR code read from the camera, on the unit (appliance/booking/)
    controller.scanner = QrScanner(camera=hardware.camera, self_view=self_view,
                                   on_code=lambda code: controller.post("qr_code", code),
                                   on_other=lambda: controller.post("qr_other"),
                                   on_fault=lambda reason: controller.post("qr_fault", reason))

    app = create_app(bridge, clerk_video=clerk_video, self_view=self_view, guest_video=guest_video)
    page = make_server(config.kiosk_host, config.kiosk_port, app, threaded=True)
    threading.Thread(target=page.serve_forever, name="kiosk-page", daemon=True).start()
    image = ImageInfo.read(data_dir=config.data_dir)  # before the update agent settles the last boot
    slots = open_slots(config, image.version)
    if isinstance(slots, FakeSlots):  # the demo: the version and slot the fake slots run, a restart restarts
        booted, version = slots.booted()
        image = dataclasses.replace(image, slot=booted, version=version or image.version)
        update_power = update_power or FakeRestart(slots, stopping.set)
    health = _health(config, hardware, session, devices, remote, image)
    watch = DeviceWatch(hardware, devices, controller.post)
    appliance = Appliance(config, hardware, controller, session, bridge, page, clerk_video, self_view=self_view,
                          selftest=selftest, devices=devices, remote=remote, stopping=stopping, health=health,
                          watch=watch, guest_video=guest_video)
    # Remote updates (appliance/update/): offers come through the controller, the trial checks this very process.
    controller.updates = appliance.updates = UpdateAgent(
        backend=slots, data_dir=config.data_dir, central_url=config.central_url,
        token=lambda: session.token, send=send, power=update_power or open_update_power(config.update, power),
        controller=controller,
        checks=trial_checks(config, appliance), image_version=image.version, trust=Trust(config.ca_file),
        online=session.connected.is_set)
    session.on_connected.append(controller.updates.connected)
    enrolment = _enrolment(config, hardware, controller.post, image.version)
    appliance.tasks = [loop.create_task(controller.run(), name="controller"),
                       loop.create_task(enrol_then_connect(enrolment, session, controller.post),
                                        name="central-session"),
                       loop.create_task(_watchdog(controller), name="watchdog"),
                       loop.create_task(health.run(), name="health-report"),
                       loop.create_task(watch.run(), name="device-watch"),
                       loop.create_task(controller.updates.run(), name="update-agent")]
    bridge.publish(controller.view)
    systemd.notify("READY=1")
    systemd.notify(f"STATUS=kiosk page on {appliance.page_url}")
    log.info("appliance ready", extra={"KIOSK_PAGE": appliance.page_url})
    return appliance


def _probes(config: ApplianceConfig, session: CentralSession):
    """The self-test's network and clock checks: the system's, or fakes that pass with fake hardware."""
    def enrolled() -> bool:
        return session.token is not None  # also once enrolment stored one
    if config.hardware.get("backend") == "fake":
        return fake_probes(enrolled)
    return system_probes(config.central_url, enrolled)


def _enrolment(config: ApplianceConfig, hardware: Hardware, post: Callable[[str, object], None],
               version: str) -> Enrolment | None:
    """Without a token the unit first shows a code to be claimed in central (appliance/fleet/enrol.py)."""
    if config.token is not None:
        return None
    return Enrolment(config.central_url, config.token_path, hardware.unit, version,
                     show=lambda screen: post("enrol", screen), trust=Trust(config.ca_file))


def _health(config: ApplianceConfig, hardware: Hardware, session: CentralSession, devices: DeviceBook,
            remote: RemoteSettings, image: ImageInfo) -> HealthReporter:
    """The health report: every 30 s, on each new connection and soon after a device changes state."""
    health = HealthReporter(send=session.send, book=devices, unit=hardware.unit, image=image,
                            data_dir=config.data_dir, rtt_ms=lambda: session.rtt_ms,
                            online=session.connected.is_set,
                            settings_version=lambda: remote.current.version if remote.current else 0)
    devices.on_change = health.changed
    session.on_connected.append(health.connected)
    return health


async def _play(track: MediaStreamTrack, hardware: Hardware, devices: DeviceBook,
                on_state: Callable[[str], None] = lambda state: None) -> None:
    """The clerk's voice to the speaker, which also hands it to the echo canceller.

    A speaker that refuses sound is recorded for the health report and told to the call
    (``on_state("speaker_failed")``: both sides read it); the call goes on (the citizen may still
    read the clerk's lips, and the clerk hears and sees them), and the speaker is tried again every
    few seconds while it says it is there: plugged in again, it plays on (``"speaker_back"``)."""
    loop = asyncio.get_running_loop()
    speaker = hardware.speaker
    working = failed = False
    retry_at = 0.0
    try:
        while True:
            frame = await track.recv()  # also while failed: the receiver's buffers must not fill
            if failed and (loop.time() < retry_at or not getattr(speaker, "present", lambda: True)()):
                continue
            try:
                await speaker.play(frame)
            except HardwareError as exc:
                if not failed:
                    log.error("the speaker stopped taking the clerk's voice: %s: %s", type(exc).__name__, exc)
                    devices.fault("speaker", "speaker_failed")
                    on_state("speaker_failed")
                working, failed, retry_at = False, True, loop.time() + POLL_S
                continue
            if failed:
                on_state("speaker_back")
            failed = False
            if not working:
                working = True
                log.info("the clerk's voice plays on %s", device_name(speaker))
                devices.ok("speaker", "live", name=device_name(speaker))
    except MediaStreamError:
        pass


async def _watchdog(controller: Controller) -> None:
    """Feed systemd's watchdog only after the controller handled a fresh tick.

    The controller never waits on the network (the session's sends are queued and
    bounded in time), so a tick waits only behind local work; one not handled within
    the interval means the controller or the loop is wedged, and systemd restarts us.
    """
    interval = systemd.watchdog_interval_s() or 10.0
    while True:
        handled = asyncio.Event()
        controller.post("tick", handled)
        try:
            # Not asyncio.wait_for: on Python 3.11 it swallows a cancel that arrives just after the tick was
            # handled, and this loop then outlives the service's shutdown (appliance/fleet/health.py).
            async with asyncio.timeout(interval):
                await handled.wait()
        except TimeoutError:
            log.error("controller did not handle events for %.0f s; letting the watchdog fire", interval)
            continue
        systemd.notify("WATCHDOG=1")
        await asyncio.sleep(interval)


def run(config: ApplianceConfig) -> None:
    """Run until SIGTERM/SIGINT (systemd stop)."""
    async def main() -> None:
        appliance = await start(config)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, appliance.stopping.set)
        await appliance.stopping.wait()
        systemd.notify("STOPPING=1")
        await appliance.close()
    asyncio.run(main())
