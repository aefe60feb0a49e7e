"""The kiosk's health report (appliance/fleet/health.py, appliance/fleet/image.py): what it says, and when
it is sent. The loop runs on a test clock: no test waits for real seconds."""
from __future__ import annotations

import asyncio
import shutil

import pytest

from appliance.call.session import CentralSession
from appliance.fleet.devices import DeviceBook
from appliance.fleet.health import HealthReporter, data_use, read_uptime
from appliance.fleet.image import (
    CMDLINE,
    IMAGE_RELEASE,
    PARTLABELS,
    PARTUUIDS,
    VERSION_FILE,
    WATCHDOG_STATUS,
    ImageInfo,
    package_version,
)
from appliance.hardware.fake.unit import FakeUnit
from appliance.update import marker as markers
from appliance.update.marker import Marker
from protocol import messages as m
from protocol.codec import decode, encode
from protocol.fleet import KioskHealth
from tests.appliance.fake_central import fake_central

IMAGE = ImageInfo(version="0.1.0+1a2b3c4d5e6f", slot="A", boot_reason="unknown")


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


class Kiosk:
    """A reporter on a test clock: its waits end when the test moves the clock past them (``advance``)
    or something wakes it."""

    def __init__(self, tmp_path, **options):
        self.clock, self.sent, self.sent_at = Clock(), [], []
        self.settings_version = 0
        self.unit, self.book = FakeUnit("fake-0001"), DeviceBook(clock=self.clock)
        self.online = True
        self.reporter = HealthReporter(send=self.send, book=self.book, unit=self.unit, data_dir=tmp_path,
                                       image=IMAGE, online=lambda: self.online, clock=self.clock,
                                       uptime=lambda: 3600, wait=self.wait,
                                       settings_version=lambda: self.settings_version, **options)
        self.book.on_change = self.reporter.changed
        self.moved = asyncio.Condition()

    async def send(self, message):
        self.sent.append(message)
        if isinstance(message, KioskHealth):
            self.sent_at.append(self.clock.now)

    async def wait(self, wake, timeout_s):
        deadline = self.clock.now + timeout_s
        async with self.moved:
            await self.moved.wait_for(lambda: wake.is_set() or self.clock.now >= deadline)

    async def advance(self, seconds: float):
        """Move the clock, then let the reporter do whatever is due."""
        self.clock.now += seconds
        async with self.moved:
            self.moved.notify_all()
        for _ in range(20):
            await asyncio.sleep(0)

    def reports(self):
        return [msg for msg in self.sent if isinstance(msg, KioskHealth)]


@pytest.fixture
async def kiosk(tmp_path):
    k = Kiosk(tmp_path)
    task = asyncio.get_running_loop().create_task(k.reporter.run())
    yield k
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


def test_report_is_a_valid_message_central_accepts(tmp_path):
    k = Kiosk(tmp_path)
    report = k.reporter.report()
    assert decode(encode(report), m.KIOSK_TO_CENTRAL) == report
    assert (report.version, report.slot, report.uptime_s) == ("0.1.0+1a2b3c4d5e6f", "A", 3600)
    assert set(report.devices) == {"camera", "microphone", "speaker", "button"}
    assert report.cpu_temp_c == k.unit.cpu_temp_c() and report.throttling == [] and report.faults == []
    assert report.data_total_bytes > 0 and report.settings_version == 0
    k.settings_version = 7  # the settings code applied version 7
    assert k.reporter.report().settings_version == 7


def test_report_shows_a_failed_camera_and_an_overheated_unit(tmp_path):
    k = Kiosk(tmp_path)
    k.book.ok("microphone", "selftest", name="USB Audio")
    k.book.fault("camera", "camera_failed")
    k.unit.overheat()
    report = k.reporter.report()
    assert report.devices["camera"].state == "failed" and report.devices["camera"].fault == "camera_failed"
    assert report.devices["microphone"].state == "ok"
    assert report.cpu_temp_c >= 80 and "soft_temperature_limit" in report.throttling
    assert {(f.code, f.device) for f in report.faults} == {("camera_failed", "camera"), ("overheated", None)}
    # overheating that lasts is one fault, not one per report; it counts again when it comes back
    k.reporter.report()
    assert [f.count for f in k.reporter.report().faults if f.code == "overheated"] == [1]
    k.unit.recover()
    k.reporter.report()
    k.unit.undervolt()
    k.unit.overheat()
    faults = {f.code: f.count for f in k.reporter.report().faults}
    assert faults["overheated"] == 2 and faults["under_voltage"] == 1


def test_data_partition_use_is_that_of_the_data_dir(tmp_path):
    used, total = data_use(tmp_path)
    usage = shutil.disk_usage(tmp_path)
    assert total == usage.total
    assert abs(used - usage.used) < 64 * 1024 * 1024  # others may write to the same disk meanwhile
    assert data_use(tmp_path / "absent") == (None, None)


def test_uptime_is_read_from_proc(tmp_path):
    (tmp_path / "uptime").write_text("12345.67 40000.00\n")
    assert read_uptime(tmp_path / "uptime") == 12345
    assert read_uptime(tmp_path / "absent") == 0
    assert read_uptime() > 0


async def test_reports_every_interval_with_a_ping_before_each(kiosk):
    await kiosk.advance(0)
    assert kiosk.sent_at == [100.0]  # the first at once
    await kiosk.advance(29)
    assert kiosk.sent_at == [100.0]
    await kiosk.advance(1)
    await kiosk.advance(30)
    assert kiosk.sent_at == [100.0, 130.0, 160.0]
    assert [msg.type for msg in kiosk.sent] == ["ping", "kiosk.health"] * 3


async def test_a_device_change_is_reported_soon_and_changes_in_a_row_make_one_report(kiosk):
    await kiosk.advance(0)
    kiosk.book.fault("camera", "camera_failed")
    kiosk.book.fault("microphone", "microphone_failed")
    await kiosk.advance(4)
    assert len(kiosk.reports()) == 1  # changes wait for the gap after the last report...
    await kiosk.advance(1)
    assert kiosk.sent_at == [100.0, 105.0]  # ...not for the interval, and both go in one report
    second = kiosk.reports()[1]
    assert second.devices["camera"].state == second.devices["microphone"].state == "failed"
    kiosk.book.fault("camera", "camera_failed")  # only counted: not a change, so it waits for the interval
    await kiosk.advance(5)
    assert len(kiosk.reports()) == 2
    await kiosk.advance(25)
    assert kiosk.sent_at == [100.0, 105.0, 135.0]
    assert kiosk.reports()[2].faults[0].count == 2
    kiosk.book.ok("camera", "selftest")
    await kiosk.advance(5)
    await kiosk.advance(20)
    kiosk.book.ok("microphone", "selftest")  # a change long after the last report goes at once
    await kiosk.advance(0)
    assert kiosk.sent_at == [100.0, 105.0, 135.0, 140.0, 160.0]


async def test_an_echo_canceller_falling_behind_is_counted_without_more_reports(kiosk):
    await kiosk.advance(0)
    kiosk.book.ok("microphone", "live", name="USB Audio")
    await kiosk.advance(5)
    assert kiosk.sent_at == [100.0, 105.0]
    for _ in range(40):  # a busy unit skips several times a second
        kiosk.book.count("microphone", "echo_behind")
    await kiosk.advance(5)
    assert kiosk.sent_at == [100.0, 105.0, 110.0]  # the first skip is news: one report soon
    for _ in range(250):
        kiosk.book.count("microphone", "echo_behind")
        await kiosk.advance(0.1)
    assert len(kiosk.sent_at) == 3  # the rest only counts: reports keep their interval (30 s after 110 s)
    await kiosk.advance(5.5)
    assert len(kiosk.sent_at) == 4
    report = kiosk.reports()[-1]
    assert report.devices["microphone"].state == "ok" and report.devices["microphone"].fault is None
    [fault] = report.faults
    assert (fault.code, fault.device, fault.count) == ("echo_behind", "microphone", 40 + 250)


async def test_offline_no_report_and_a_new_connection_gets_one_at_once(tmp_path):
    k = Kiosk(tmp_path)
    k.online = False
    task = asyncio.get_running_loop().create_task(k.reporter.run())
    try:
        await k.advance(60)
        assert k.sent == []
        k.online = True
        k.reporter.connected()  # what the session's on_connected hook calls
        await k.advance(0)
        assert len(k.reports()) == 1
        # No ping on a fresh connection: the controller's first message (a ping: "no visit to resume")
        # must be the first central gets; the periodic reports measure the round trip.
        assert not [msg for msg in k.sent if isinstance(msg, m.Ping)]
        await k.advance(30)
        assert len(k.reports()) == 2 and [type(msg) for msg in k.sent][-2:] == [m.Ping, KioskHealth]
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_rtt_is_measured_by_a_ping_round_trip():
    async with fake_central() as central:
        ponged = asyncio.Event()

        def post(kind, value):
            if kind == "central" and isinstance(value, m.Pong):
                ponged.set()
        session = CentralSession(central.url, "kiosk-1." + "k" * 30, post)
        connected = []
        session.on_connected.append(lambda: connected.append(True))
        task = asyncio.get_running_loop().create_task(session.run())
        try:
            conn = await central.connection(1)
            await session.connected.wait()
            assert connected == [True] and session.rtt_ms is None
            await session.send(m.Ping(type="ping"))
            await conn.recv("ping")
            await conn.send(type="pong")
            await asyncio.wait_for(ponged.wait(), 10)
            assert 0 <= session.rtt_ms < 10_000
            unit = FakeUnit("fake-0001")
            reporter = HealthReporter(send=session.send, book=DeviceBook(), unit=unit, data_dir=".", image=IMAGE,
                                      rtt_ms=lambda: session.rtt_ms)
            assert reporter.report().rtt_ms == session.rtt_ms
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


# -- the image's files ---------------------------------------------------------------------------

def test_image_info_without_image_files_is_the_package_version(tmp_path):
    info = ImageInfo.read(tmp_path)
    assert info == ImageInfo(version=package_version(), slot=None, boot_reason="unknown")


def test_image_info_from_the_images_files(tmp_path):
    (tmp_path / IMAGE_RELEASE).parent.mkdir(parents=True)
    (tmp_path / IMAGE_RELEASE).write_text("IMAGE_VERSION=0.2.0\nIMAGE_COMMIT=8a93d1b0c1d2e3f4a5b6\nIMAGE_BASE=debian\n")
    (tmp_path / "proc").mkdir()
    (tmp_path / CMDLINE).write_text("console=tty1 root=PARTUUID=AAAA-2 rootfstype=ext4 ro\n")
    for folder in (PARTLABELS, PARTUUIDS):
        (tmp_path / folder).mkdir(parents=True, exist_ok=True)
    for name in ("mmcblk0p2", "mmcblk0p3"):
        (tmp_path / "dev" / name).touch()
    (tmp_path / PARTLABELS / "rootfs-a").symlink_to("../../mmcblk0p2")
    (tmp_path / PARTLABELS / "rootfs-b").symlink_to("../../mmcblk0p3")
    (tmp_path / PARTUUIDS / "aaaa-2").symlink_to("../../mmcblk0p2")
    assert ImageInfo.read(tmp_path) == ImageInfo(version="0.2.0+8a93d1b0c1d2", slot="A", boot_reason="unknown")
    (tmp_path / PARTUUIDS / "aaaa-2").unlink()
    (tmp_path / PARTUUIDS / "aaaa-2").symlink_to("../../mmcblk0p3")
    assert ImageInfo.read(tmp_path).slot == "B"
    (tmp_path / VERSION_FILE).parent.mkdir(parents=True)
    (tmp_path / VERSION_FILE).write_text("0.3.0+update\n")
    assert ImageInfo.read(tmp_path).version == "0.3.0+update"


def test_boot_reason_from_the_watchdog_and_the_update_marker(tmp_path):
    (tmp_path / WATCHDOG_STATUS).parent.mkdir(parents=True)
    (tmp_path / WATCHDOG_STATUS).write_text("32\n")
    assert ImageInfo.read(tmp_path).boot_reason == "watchdog"
    (tmp_path / WATCHDOG_STATUS).write_text("0\n")
    assert ImageInfo.read(tmp_path).boot_reason == "unknown"

    data = tmp_path / "data"
    data.mkdir()
    (tmp_path / "proc").mkdir(exist_ok=True)
    (tmp_path / CMDLINE).write_text("root=PARTUUID=AAAA-3\n")
    for folder in (PARTLABELS, PARTUUIDS):
        (tmp_path / folder).mkdir(parents=True, exist_ok=True)
    for name, label in (("mmcblk0p2", "rootfs-a"), ("mmcblk0p3", "rootfs-b")):
        (tmp_path / "dev" / name).touch()
        (tmp_path / PARTLABELS / label).symlink_to(f"../../{name}")
    (tmp_path / PARTUUIDS / "aaaa-3").symlink_to("../../mmcblk0p3")
    trial = Marker(bundle_id=7, version="2.0", from_version="1.0", from_slot="A", target_slot="B", step="rebooting",
                   boot_id="before")
    markers.save(data / markers.MARKER_FILE, trial)
    assert ImageInfo.read(tmp_path, data).boot_reason == "update"  # slot B booted for its trial
    markers.save(data / markers.MARKER_FILE, trial.but(target_slot="A", from_slot="B"))
    assert ImageInfo.read(tmp_path, data).boot_reason == "rollback"  # back in the old slot
    (tmp_path / "proc/sys/kernel/random").mkdir(parents=True)
    (tmp_path / "proc/sys/kernel/random/boot_id").write_text("now\n")
    markers.save(data / markers.MARKER_FILE, trial.but(step="running", boot_id="now"))
    assert ImageInfo.read(tmp_path, data).boot_reason == "update"  # the service restarted after the commit
    markers.save(data / markers.MARKER_FILE, trial.but(step="running", boot_id="before"))
    assert ImageInfo.read(tmp_path, data).boot_reason == "unknown"  # a later boot


@pytest.mark.parametrize("steps", range(6))
async def test_the_reporter_stops_when_cancelled_just_as_it_is_woken(tmp_path, steps):
    """The service's shutdown cancels the reporter, maybe right after a new connection woke it."""
    reporter = HealthReporter(send=lambda msg: asyncio.sleep(0), book=DeviceBook(), unit=FakeUnit("fake-0001"),
                              data_dir=tmp_path, image=IMAGE, online=lambda: False)
    task = asyncio.get_running_loop().create_task(reporter.run())
    for _ in range(3):
        await asyncio.sleep(0)
    reporter.changed()
    for _ in range(steps):
        await asyncio.sleep(0)
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=10)
    assert done and task.cancelled()
