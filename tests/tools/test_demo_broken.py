"""``./build.sh demo --broken camera``: the demo's kiosk with a fake device told to fail."""
from __future__ import annotations

import argparse
import importlib.util
import tomllib
from pathlib import Path

import pytest
from aiortc.mediastreams import MediaStreamError

from appliance.fleet.devices import DeviceBook
from appliance.fleet.health import HealthReporter
from appliance.fleet.image import ImageInfo
from appliance.hardware.errors import HardwareError
from appliance.hardware.fake.unit import open_unit
from appliance.hardware.select import open_hardware

spec = importlib.util.spec_from_file_location("demo", Path(__file__).parents[2] / "tools" / "demo.py")
demo = importlib.util.module_from_spec(spec)
spec.loader.exec_module(demo)


async def test_broken_devices_reach_the_fake_backend():
    args = demo.parse_args(["--broken", "camera", "--broken", "microphone:3", "--broken", "speaker",
                            "--broken", "button"])
    hardware = tomllib.loads(demo.hardware_toml(args.broken))["hardware"]
    hw = open_hardware(hardware)
    try:
        with pytest.raises(HardwareError):
            hw.camera.track()  # will not start
        track = hw.microphone.track()
        for _ in range(3):
            await track.recv()
        with pytest.raises(MediaStreamError):
            await track.recv()  # stopped by itself after three frames
        assert hw.speaker.broken and hw.button.broken
    finally:
        hw.close()


def test_without_broken_devices_all_work():
    assert tomllib.loads(demo.hardware_toml([]))["hardware"] == {"backend": "fake"}


@pytest.mark.parametrize("bad", ["display", "speaker:10", "camera:ten"])
def test_a_wrong_device_is_refused_with_what_would_be_right(bad):
    with pytest.raises(argparse.ArgumentTypeError):
        demo.broken_device(bad)


def test_a_hot_undervolted_unit_reaches_the_health_report(tmp_path):
    args = demo.parse_args(["--unit", "hot", "--unit", "undervolted", "--unit", "hot"])
    hardware = tomllib.loads(demo.hardware_toml([], args.unit))["hardware"]
    assert hardware["unit"] == {"overheat": True, "undervolt": True}
    unit = open_unit(hardware["unit"])
    report = HealthReporter(send=None, book=DeviceBook(), unit=unit, data_dir=tmp_path,
                            image=ImageInfo.read(tmp_path)).report()
    assert report.cpu_temp_c >= 80 and {"under_voltage", "soft_temperature_limit"} <= set(report.throttling)
    assert {f.code for f in report.faults} == {"overheated", "under_voltage"}


async def test_the_demos_camera_holds_up_what_its_file_says(tmp_path):
    """The demo's way to hold a booking's QR code up to the kiosk: its link written into a file."""
    pytest.importorskip("zxingcpp", reason="the QR decoder zxing-cpp is not installed (pip install zxing-cpp==2.3.0)")
    from appliance.booking.qr_reader import QrReader
    holds = tmp_path / "camera-holds.txt"
    args = demo.parse_args(["--broken", "microphone"])
    hardware = tomllib.loads(demo.hardware_toml(args.broken, [], holds))["hardware"]
    assert hardware["camera"] == {"holds_file": str(holds)}
    hw = open_hardware(hardware)
    try:
        hw.camera.held.POLL_S = 0.0
        track = hw.camera.track(encoded=False)
        assert QrReader().read(await track.recv()).codes == ()
        holds.write_text("http://localhost:8080/booking/7K3M9QX2\n")
        assert QrReader().read(await track.recv()).codes == ("7K3M9QX2",)
        # with a broken camera too, both settings reach it
        both = tomllib.loads(demo.hardware_toml([("camera", None)], [], holds))["hardware"]["camera"]
        assert both == {"fail": True, "holds_file": str(holds)}
    finally:
        hw.close()
