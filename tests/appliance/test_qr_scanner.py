"""The scanner: the camera on while the citizen holds their code up, the code found, the camera off."""
from __future__ import annotations

import pytest

from appliance.booking.qr_reader import QrReader
from appliance.booking.scanner import QrScanner
from appliance.hardware.fake.backend import FakeCamera
from appliance.hardware.fake.held_code import Look
from appliance.kiosk.self_view import SelfViewFeed
from tests.polling import until

pytest.importorskip("zxingcpp", reason="the QR decoder zxing-cpp is not installed (pip install zxing-cpp==2.3.0)")

LINK = "https://buergerbuero.musterdorf.de/booking/7K3M9QX2"


class Results:
    def __init__(self) -> None:
        self.codes, self.others, self.faults = [], 0, []

    def code(self, code: str) -> None:
        self.codes.append(code)

    def other(self) -> None:
        self.others += 1

    def fault(self, reason: str) -> None:
        self.faults.append(reason)


def camera_off(camera: FakeCamera) -> bool:
    """Nothing captures: never started, or its track ended (on a real camera, its light goes off)."""
    return camera._track is None or camera._track.readyState == "ended"


def scanner_for(camera, results: Results, self_view=None) -> QrScanner:
    return QrScanner(camera=camera, self_view=self_view, on_code=results.code, on_other=results.other,
                     on_fault=results.fault)


async def test_a_code_held_up_is_found_once_and_the_camera_goes_off():
    camera, results, self_view = FakeCamera(640, 360, fps=30), Results(), SelfViewFeed()
    scanner = scanner_for(camera, results, self_view)
    scanner.start()
    try:
        assert scanner.running and self_view.mode == "raw"  # the citizen sees what the camera sees
        await until(lambda: scanner.frames_read >= 2, what="frames searched")
        assert results.codes == [] and results.others == 0  # the test pattern alone holds no code
        camera.held.hold(LINK, Look(angle=15, noise=5))
        await until(lambda: results.codes, what="the code found")
        assert results.codes == ["7K3M9QX2"] and results.faults == []
        assert not scanner.running and camera_off(camera) and self_view.mode is None
    finally:
        scanner.stop()
        camera.close()


async def test_another_qr_code_is_reported_and_scanning_goes_on():
    camera, results = FakeCamera(640, 360, fps=30), Results()
    scanner = scanner_for(camera, results)
    camera.held.hold("WIFI:S:Rathaus-Gast;T:WPA;P:geheim;;")
    scanner.start()
    try:
        await until(lambda: results.others >= 2, what="the other QR code reported")
        assert scanner.running and results.codes == []
        camera.held.hold(LINK)
        await until(lambda: results.codes, what="the booking's code found after the other one")
    finally:
        scanner.stop()
        camera.close()


async def test_stopping_turns_the_camera_off_without_a_result():
    camera, results = FakeCamera(640, 360, fps=30), Results()
    scanner = scanner_for(camera, results)
    scanner.start()
    await until(lambda: scanner.frames_read >= 1, what="a frame searched")
    scanner.stop()
    camera.held.hold(LINK)
    assert not scanner.running and camera_off(camera)
    assert results.codes == [] and results.faults == []
    camera.close()


async def test_a_camera_that_does_not_start_or_stops_is_a_fault_not_a_hang():
    camera, results = FakeCamera(640, 360, fps=30), Results()
    camera.fail()
    scanner_for(camera, results).start()
    assert results.faults == ["camera"]
    camera.repair()
    camera.fail(after_frames=5)
    scanner = scanner_for(camera, results)
    scanner.start()
    await until(lambda: len(results.faults) == 2, what="the stopped camera reported")
    assert results.faults == ["camera", "camera"] and not scanner.running
    camera.close()


async def test_without_the_decoder_the_scan_is_a_fault_at_once(monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "zxingcpp", None)
    camera, results = FakeCamera(640, 360, fps=30), Results()
    scanner = QrScanner(camera=camera, self_view=None, on_code=results.code, on_other=results.other,
                        on_fault=results.fault, reader=QrReader())
    scanner.start()
    assert results.faults == ["decoder"] and not scanner.running and camera_off(camera)
