"""Kiosk health reports at a real central: a good one is kept for the fleet page; an oversized or
malformed one gets a typed error and changes nothing; a flood is limited and the kiosk stays connected."""
from __future__ import annotations

import json

import pytest

from central.live.limits import FLEET_REPORTS, Buckets
from protocol.codec import MAX_FRAME_BYTES
from protocol.fleet import FAULT_CODES, MAX_RECENT_FAULTS

DEVICE = {"state": "ok", "source": "selftest", "fault": None, "name": "imx708"}


def health(**changes) -> dict:
    report = {"type": "kiosk.health", "version": "0.1.0+1a2b3c4d5e6f", "slot": "A", "uptime_s": 3600,
              "boot_reason": "unknown",
              "devices": {d: DEVICE for d in ("camera", "microphone", "speaker", "button")},
              "cpu_temp_c": 51.6, "throttling": [], "throttling_since_boot": ["under_voltage"],
              "data_used_bytes": 10_000_000, "data_total_bytes": 1_000_000_000, "rtt_ms": 3.2,
              "faults": [{"code": "camera_failed", "device": "camera", "count": 2, "last_s_ago": 40}],
              "settings_version": 3}
    report.update(changes)
    return report


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def stored(central):
    return [k.health for k in central.hub.fleet.kiosks.values() if k.online]


async def still_connected(kiosk) -> None:
    await kiosk.send(type="ping")
    await kiosk.recv("pong")  # frames before it stay in kiosk.inbox


async def test_a_good_report_is_kept_for_the_fleet_page(central):
    kiosk = await central.kiosk()
    await kiosk.send(**health())
    await still_connected(kiosk)  # no reply to the report itself: the next frame is the pong
    [report] = stored(central)
    assert report.devices["camera"].name == "imx708" and report.rtt_ms == 3.2
    assert report.faults[0].code == "camera_failed"


async def test_a_report_naming_every_fault_code_is_kept(central):
    kiosk = await central.kiosk()
    await kiosk.send(**health(faults=[{"code": code, "count": 1, "last_s_ago": i}
                                      for i, code in enumerate(FAULT_CODES)]))
    await still_connected(kiosk)
    [report] = stored(central)
    assert [fault.code for fault in report.faults] == list(FAULT_CODES)


BAD = {
    # codes only, never text: an unknown fault, a free-text field, a device central does not know
    "unknown fault code": ("invalid_field", health(faults=[{"code": "Frau Müller's camera", "count": 1,
                                                             "last_s_ago": 1}])),
    "free text field": ("invalid_field", health(note="called Max Mustermann at home")),
    "version with text": ("invalid_field", health(version="0.1 built by Max Mustermann")),
    "unknown device": ("invalid_field", health(devices={"printer": DEVICE})),
    "device name too long": ("invalid_field", health(devices={"camera": {**DEVICE, "name": "x" * 121}})),
    "devices not an object": ("invalid_field", health(devices=["camera"])),
    "too many faults": ("invalid_field", health(faults=[{"code": "software_error", "count": 1,
                                                          "last_s_ago": i} for i in range(MAX_RECENT_FAULTS + 1)])),
    "hostile fault list": ("invalid_field", health(faults=[{"code": "software_error", "count": 1,
                                                             "last_s_ago": 1}] * 700)),  # still inside a frame
    "unknown throttling flag": ("invalid_field", health(throttling=["on_fire"])),
    "negative uptime": ("invalid_field", health(uptime_s=-1)),
    "uptime as text": ("invalid_field", health(uptime_s="3600")),
    "impossible temperature": ("invalid_field", health(cpu_temp_c=1e9)),
    "slot C": ("invalid_field", health(slot="C")),
    "missing version": ("invalid_field", {k: v for k, v in health().items() if k != "version"}),
    "NaN temperature": ("invalid_field", json.dumps(health(cpu_temp_c=float("nan")))),
    "infinite round trip": ("invalid_field", json.dumps(health(rtt_ms=float("inf")))),
    "oversized": ("too_large", health(faults=[], padding="x" * MAX_FRAME_BYTES)),
    "oversized binary": ("too_large", json.dumps(health(padding="x" * MAX_FRAME_BYTES)).encode()),
    "not json": ("bad_json", '{"type": "kiosk.health", "version": '),
}


@pytest.mark.parametrize("case", BAD, ids=list(BAD))
async def test_a_bad_report_gets_a_typed_error_and_changes_nothing(central, case):
    code, frame = BAD[case]
    kiosk = await central.kiosk()
    await kiosk.send(**health(uptime_s=1))
    await still_connected(kiosk)
    [before] = stored(central)
    if isinstance(frame, dict):
        await kiosk.send(**frame)
    else:
        await kiosk.send_raw(frame)
    reply = await kiosk.recv()
    assert reply["type"] == "error" and reply["code"] == code, reply
    assert reply["ref"] == (None if code in ("bad_json", "too_large") else "kiosk.health")  # unread: no ref
    assert stored(central) == [before]  # the last good report stays, untouched
    await still_connected(kiosk)


async def test_a_hostile_fault_list_is_refused_with_the_limit_in_words(central):
    kiosk = await central.kiosk()
    await kiosk.send(**BAD["hostile fault list"][1])
    reply = await kiosk.recv("error")
    detail = reply["detail"]  # e.g. "faults: List should have at most 20 items after validation, not 700"
    assert detail.startswith("faults: ") and f"at most {MAX_RECENT_FAULTS} items" in detail and "700" in detail, reply
    await still_connected(kiosk)


async def test_a_report_flood_is_limited_without_disconnecting_the_kiosk(central):
    clock = FakeClock()
    central.hub.fleet_reports = Buckets(FLEET_REPORTS, clock=clock)
    kiosk = await central.kiosk()
    for uptime in range(100):
        await kiosk.send(**health(uptime_s=uptime))
    await still_connected(kiosk)
    limited = [msg for msg in kiosk.inbox if msg["type"] == "error"]
    assert len(limited) == 100 - FLEET_REPORTS.capacity
    assert {(e["code"], e["ref"], e["retry_after_s"]) for e in limited} == {("rate_limited", "kiosk.health", 5)}
    [report] = stored(central)
    assert report.uptime_s == FLEET_REPORTS.capacity - 1  # the last accepted one; the rest changed nothing

    # other kinds of report have their own allowance: a flood of health does not hide a self-test
    await kiosk.send(type="kiosk.selftest", started_by="button", items=[{"item": "camera", "result": "pass"}])
    await still_connected(kiosk)
    assert [k.selftest for k in central.hub.fleet.kiosks.values() if k.online][0] is not None

    # a kiosk that keeps to the hinted pace gets through again
    clock.now += 5
    await kiosk.send(**health(uptime_s=500))
    await still_connected(kiosk)
    assert stored(central)[0].uptime_s == 500


async def test_one_kiosks_flood_does_not_limit_another(central):
    clock = FakeClock()
    central.hub.fleet_reports = Buckets(FLEET_REPORTS, clock=clock)
    noisy, quiet = await central.kiosk(), await central.new_kiosk("Bücherei")
    for _ in range(20):
        await noisy.send(**health())
    await still_connected(noisy)
    await quiet.send(**health(uptime_s=7))
    await still_connected(quiet)
    assert not [msg for msg in quiet.inbox if msg["type"] == "error"]
    assert 7 in [h.uptime_s for h in stored(central)]
