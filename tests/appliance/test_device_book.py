"""The appliance's record of device states and faults (appliance/fleet/devices.py)."""
import pytest

from appliance.fleet.devices import DeviceBook
from appliance.hardware.errors import DeviceUsageError
from protocol.fleet import DEVICES, MAX_RECENT_FAULTS, DeviceHealth, RecentFault


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_every_device_starts_unknown():
    book = DeviceBook()
    assert book.snapshot() == {d: DeviceHealth(state="unknown", source="none") for d in DEVICES}
    assert book.recent_faults() == []


def test_selftest_and_live_results_replace_each_other():
    changes = []
    book = DeviceBook(on_change=lambda: changes.append(1))
    book.ok("camera", "selftest", name="imx708")
    book.set("microphone", "missing", "selftest", fault="microphone_missing")
    assert book.snapshot()["camera"] == DeviceHealth(state="ok", source="selftest", name="imx708")
    assert book.snapshot()["microphone"].fault == "microphone_missing"
    assert len(changes) == 2
    book.ok("camera", "selftest", name="imx708")  # nothing new: no report
    assert len(changes) == 2
    book.ok("microphone", "live")
    assert book.snapshot()["microphone"] == DeviceHealth(state="ok", source="live")
    assert len(changes) == 3


def test_a_live_fault_marks_the_device_failed_and_is_counted():
    clock, changes = Clock(), []
    book = DeviceBook(clock=clock, on_change=lambda: changes.append(1))
    book.ok("camera", "selftest", name="imx708")
    book.fault("camera", "camera_failed")
    assert book.snapshot()["camera"] == DeviceHealth(state="failed", source="live", fault="camera_failed",
                                                     name="imx708")
    clock.now += 30
    book.fault("camera", "camera_failed")  # counted; nothing changed that needs a report at once
    book.fault(None, "network_down")
    assert len(changes) == 3
    clock.now += 5
    assert book.recent_faults() == [
        RecentFault(code="network_down", count=1, last_s_ago=5),
        RecentFault(code="camera_failed", device="camera", count=2, last_s_ago=5),
    ]
    assert book.recent_faults(now=clock.now + 60)[1].last_s_ago == 65


def test_recent_faults_keep_what_a_report_can_carry():
    clock = Clock()
    book = DeviceBook(clock=clock)
    from protocol.fleet import FAULT_CODES
    for code in FAULT_CODES:
        clock.now += 1
        book.fault(None, code)
    faults = book.recent_faults()
    assert len(faults) == len(FAULT_CODES) and faults[0].code == FAULT_CODES[-1]
    for device in DEVICES:
        clock.now += 1
        book.fault(device, "software_error")
    assert len(book.recent_faults()) == MAX_RECENT_FAULTS and book.recent_faults()[0].device == DEVICES[-1]


def test_unknown_names_are_refused():
    book = DeviceBook()
    with pytest.raises(DeviceUsageError, match="unknown device"):
        book.ok("printer", "live")
    with pytest.raises(DeviceUsageError, match="unknown fault code"):
        book.fault("camera", "smoke")
    with pytest.raises(DeviceUsageError):
        book.set("camera", "broken", "live")


def test_a_failing_listener_does_not_break_the_writer():
    def explode():
        raise RuntimeError("listener bug")
    book = DeviceBook(on_change=explode)
    book.fault("microphone", "microphone_failed")
    assert book.snapshot()["microphone"].state == "failed"


def test_an_unplugged_device_is_missing_and_counted():
    book = DeviceBook()
    book.fault("speaker", "speaker_missing", state="missing")
    assert (book.snapshot()["speaker"].state, book.snapshot()["speaker"].fault) == ("missing", "speaker_missing")
    with pytest.raises(DeviceUsageError, match="failed or missing"):
        book.fault("speaker", "speaker_failed", state="ok")


def test_a_fault_of_a_working_device_is_only_counted():
    clock, changes = Clock(), []
    book = DeviceBook(clock=clock, on_change=lambda: changes.append(1))
    book.ok("microphone", "live", name="USB Audio")
    for _ in range(3):
        clock.now += 1
        book.count("microphone", "echo_behind")
    assert book.snapshot()["microphone"] == DeviceHealth(state="ok", source="live", name="USB Audio")
    assert len(changes) == 2  # the device once, the fault's first count: repeats wait for the next report
    assert book.recent_faults() == [RecentFault(code="echo_behind", device="microphone", count=3, last_s_ago=0)]
    with pytest.raises(DeviceUsageError, match="unknown fault code"):
        book.count("microphone", "too_loud")
