"""The unit itself (serial, model, temperature, throttling): the Pi backend against a fake kernel tree,
the fake backend, and both through open_hardware."""
from pathlib import Path

import pytest

from appliance.hardware.errors import UnitError
from appliance.hardware.fake.unit import FakeUnit, stable_serial
from appliance.hardware.fake.unit import open_unit as open_fake_unit
from appliance.hardware.interfaces import Unit
from appliance.hardware.pi.unit import (
    MODEL_FILE,
    SERIAL_FILE,
    TEMPERATURE_FILE,
    THROTTLED_FILE,
    PiUnit,
    decode_throttled,
)
from appliance.hardware.select import open_hardware
from protocol.fleet import KioskHealth


def write(root: Path, name: str, data: bytes) -> None:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


@pytest.fixture
def pi_tree(tmp_path):
    """What a Raspberry Pi 4's kernel shows (device tree strings end in NUL)."""
    write(tmp_path, SERIAL_FILE, b"10000000a1b2c3d4\x00")
    write(tmp_path, MODEL_FILE, b"Raspberry Pi 4 Model B Rev 1.5\x00")
    write(tmp_path, TEMPERATURE_FILE, b"51634\n")
    write(tmp_path, THROTTLED_FILE, b"0\n")
    return tmp_path


def test_pi_unit_reads_identity_and_condition(pi_tree):
    unit = PiUnit(pi_tree)
    assert isinstance(unit, Unit)
    assert unit.serial == "10000000a1b2c3d4"
    assert unit.model == "Raspberry Pi 4 Model B Rev 1.5"
    assert unit.cpu_temp_c() == 51.6
    assert unit.throttling() == [] and unit.throttling_since_boot() == []


def test_pi_unit_reads_lazily_and_follows_the_temperature(pi_tree):
    unit = PiUnit(pi_tree)
    write(pi_tree, TEMPERATURE_FILE, b"80500\n")  # after opening: read when asked, not before
    write(pi_tree, THROTTLED_FILE, b"50005\n")  # under-voltage and throttled now and since boot
    assert unit.cpu_temp_c() == 80.5
    assert unit.throttling() == ["under_voltage", "throttled"]
    assert unit.throttling_since_boot() == ["under_voltage", "throttled"]


def test_throttled_word_decodes_now_and_since_boot_apart():
    assert decode_throttled(0x80000) == ([], ["soft_temperature_limit"])
    assert decode_throttled(0x2) == (["frequency_capped"], [])
    assert decode_throttled(0xF000F) == (["under_voltage", "frequency_capped", "throttled",
                                          "soft_temperature_limit"],) * 2


def test_pi_unit_without_firmware_flags_or_thermal_zone_reports_none(tmp_path):
    write(tmp_path, SERIAL_FILE, b"10000000a1b2c3d4\x00")
    unit = PiUnit(tmp_path)  # the mainline kernel has no get_throttled; a VM no thermal zone
    assert unit.cpu_temp_c() is None and unit.throttling() == [] and unit.throttling_since_boot() == []
    write(tmp_path, TEMPERATURE_FILE, b"garbage")
    write(tmp_path, THROTTLED_FILE, b"zz")
    assert unit.cpu_temp_c() is None and unit.throttling() == []
    write(tmp_path, TEMPERATURE_FILE, b"-273000")  # an impossible reading is no reading
    assert unit.cpu_temp_c() is None


def test_pi_unit_missing_serial_says_what_to_do(tmp_path):
    unit = PiUnit(tmp_path)  # opening reads nothing, so it does not fail
    with pytest.raises(UnitError, match=r"serial-number.*\[hardware.unit\]"):
        _ = unit.serial
    with pytest.raises(UnitError, match="is this a Raspberry Pi"):
        _ = unit.model
    write(tmp_path, SERIAL_FILE, b"\x01\x02\x00")
    with pytest.raises(UnitError, match="not 4-64 letters"):
        _ = unit.serial


async def test_pi_unit_serial_from_settings_wins(pi_tree):
    hw = open_hardware({"backend": "fake", "unit": {"backend": "pi", "root": str(pi_tree), "serial": "label-0042"}})
    try:
        assert hw.unit.serial == "label-0042" and hw.unit.model.startswith("Raspberry Pi 4")
    finally:
        hw.close()
    with pytest.raises(UnitError):
        PiUnit(pi_tree, serial="no spaces please")


def test_fake_unit_serial_is_stable_and_differs_between_machines(tmp_path):
    one, other = tmp_path / "one", tmp_path / "other"
    one.write_text("0f1e2d3c4b5a69788796a5b4c3d2e1f0\n")
    other.write_text("11111111111111111111111111111111\n")
    assert stable_serial(one) == stable_serial(one) == open_fake_unit({}, machine_id=one).serial
    assert stable_serial(one) != stable_serial(other)
    assert stable_serial(tmp_path / "absent").startswith("fake-")  # no machine id: the host name stands in
    assert open_fake_unit({"serial": "fake-0001"}).serial == "fake-0001"
    with pytest.raises(UnitError):
        open_fake_unit({"serial": "x"})


def test_fake_unit_overheats_and_undervolts_when_told():
    unit = FakeUnit("fake-0001")
    assert isinstance(unit, Unit)
    assert 30 < unit.cpu_temp_c() < 70 and unit.throttling() == [] and unit.throttling_since_boot() == []
    unit.overheat()
    assert unit.cpu_temp_c() >= 80
    assert unit.throttling() == ["soft_temperature_limit", "throttled"]
    unit.recover()
    unit.undervolt()
    assert unit.throttling() == ["throttled", "under_voltage"]
    assert unit.throttling_since_boot() == ["soft_temperature_limit", "throttled", "under_voltage"]
    unit.recover()
    assert unit.throttling() == [] and len(unit.throttling_since_boot()) == 3


@pytest.mark.parametrize("make", [lambda root: PiUnit(root), lambda root: FakeUnit("fake-0001")], ids=["pi", "fake"])
def test_unit_readings_fit_the_health_report(make, pi_tree):
    unit = make(pi_tree)
    KioskHealth(type="kiosk.health", version="0.1.0", uptime_s=1, boot_reason="unknown", devices={},
                cpu_temp_c=unit.cpu_temp_c(), throttling=unit.throttling(),
                throttling_since_boot=unit.throttling_since_boot())


async def test_open_hardware_opens_the_unit_with_the_devices():
    hw = open_hardware({"backend": "fake", "unit": {"serial": "fake-0042"}})
    try:
        assert isinstance(hw.unit, FakeUnit) and hw.unit.serial == "fake-0042"
    finally:
        hw.close()
