"""protocol.fleet: a health report's fault list holds every fault code, and no more than that."""
from __future__ import annotations

import json

import pytest

from protocol import fleet as f
from protocol import messages as m
from protocol.codec import decode
from protocol.errors import ErrorCode, ProtocolError

OLDER_KIOSKS_FAULTS = 20  # what kiosks sent at most before the limit followed the fault codes


def report(faults: list[dict]) -> str:
    return json.dumps({"type": "kiosk.health", "version": "0.3.0+1a2b3c4d5e6f", "uptime_s": 60,
                       "boot_reason": "power_on", "devices": {}, "faults": faults})


def fault(code: str, device: str | None = None, ago: int = 5) -> dict:
    return {"code": code, "device": device, "count": 1, "last_s_ago": ago}


def test_the_limit_is_the_number_of_fault_codes():
    assert f.MAX_RECENT_FAULTS == len(f.FAULT_CODES) == len(set(f.FAULT_CODES))
    assert f.KioskHealth.model_json_schema()["properties"]["faults"]["maxItems"] == f.MAX_RECENT_FAULTS


def test_a_report_naming_every_fault_code_once_is_valid():
    health = decode(report([fault(code, ago=i) for i, code in enumerate(f.FAULT_CODES)]), m.KIOSK_TO_CENTRAL)
    assert [x.code for x in health.faults] == list(f.FAULT_CODES)


def test_an_older_kiosks_report_stays_valid():
    """Older kiosks cut the list at 20 entries, one per code and device: the limit must never fall below."""
    entries = [fault(code, device) for device in (None, *f.DEVICES) for code in f.FAULT_CODES]
    health = decode(report(entries[:OLDER_KIOSKS_FAULTS]), m.KIOSK_TO_CENTRAL)
    assert len(health.faults) == OLDER_KIOSKS_FAULTS


@pytest.mark.parametrize("entries", [f.MAX_RECENT_FAULTS + 1, 700])  # 700: a hostile list, still inside a frame
def test_a_longer_list_is_refused_with_an_error_naming_the_field_and_the_limit(entries):
    frame = report([fault("software_error", ago=i) for i in range(entries)])
    with pytest.raises(ProtocolError) as info:
        decode(frame, m.KIOSK_TO_CENTRAL)
    err = info.value
    assert err.code is ErrorCode.INVALID_FIELD and err.ref == "kiosk.health"
    assert err.detail.startswith("faults: ") and f"at most {f.MAX_RECENT_FAULTS} items" in err.detail, err.detail
    assert f"not {entries}" in err.detail, err.detail
