"""Health reports and fleet states for the fleet tests (page, metrics, restart)."""
from __future__ import annotations


def health(*, camera: str = "ok", temp: float | None = 52.5, throttling: list[str] | None = None,
           used: int | None = 1_000_000, total: int | None = 8_000_000, rtt: float | None = 12.0,
           faults: list[dict] | None = None, version: str = "0.3.0+abc", slot: str | None = "A") -> dict:
    """A kiosk.health message as the appliance sends it."""
    devices = {"camera": {"state": camera, "source": "live", "fault": None if camera in ("ok", "unknown")
                          else "camera_failed", "name": "imx708"},
               "microphone": {"state": "ok", "source": "selftest", "name": "USB Audio"},
               "speaker": {"state": "unknown", "source": "none"},
               "button": {"state": "ok", "source": "selftest"}}
    return {"type": "kiosk.health", "version": version, "slot": slot, "uptime_s": 3725, "boot_reason": "power_on",
            "devices": devices, "cpu_temp_c": temp, "throttling": throttling or [], "throttling_since_boot": [],
            "data_used_bytes": used, "data_total_bytes": total, "rtt_ms": rtt, "faults": faults or [],
            "settings_version": 0}
