"""Health lights: each kiosk's last health report judged per part, as the fleet page shows it.

A light has a level (ok green, warn amber, bad red, none grey) and a text saying what it means,
so the page never relies on colour alone. Texts are catalogue ids (N_), translated in the template.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from central.i18n import N_
from protocol import fleet as f

OK, WARN, BAD, NONE = "ok", "warn", "bad", "none"

HOT_C, WARM_C = 80.0, 70.0              # the Pi firmware throttles from 80 °C (soft limit from 60-70 °C)
DISK_BAD, DISK_WARN = 0.95, 0.85         # share of the data partition in use
RTT_BAD_MS, RTT_WARN_MS = 1000.0, 300.0  # a call is hard to hold beyond about 300 ms
# A working microphone is amber while its echo canceller fell behind within this time: calls had an echo.
ECHO_BEHIND_RECENT_S = 3600

# (key, heading) of every light, in the page's column order.
LIGHTS: tuple[tuple[str, str], ...] = (
    ("camera", N_("Camera")), ("microphone", N_("Microphone")), ("speaker", N_("Speaker")),
    ("button", N_("Button")), ("temperature", N_("Temperature")), ("disk", N_("Disk")),
    ("connection", N_("Connection")))

_DEVICE_TEXT = {"ok": N_("works"), "failed": N_("failed"), "missing": N_("missing"), "unknown": N_("not tested yet")}
_DEVICE_LEVEL = {"ok": OK, "failed": BAD, "missing": BAD, "unknown": NONE}


@dataclass(frozen=True)
class Light:
    key: str
    level: str
    text: str                     # a catalogue id
    values: dict[str, object] = field(default_factory=dict)  # its placeholders
    detail: str | None = None     # a fault code, not translated
    name: str | None = None       # the device in use, as the kiosk names it (e.g. "USB speakerphone ... (plughw:...)")


NO_REPORT = N_("no report")


def lights(health: f.KioskHealth | None) -> list[Light]:
    """One light per entry of LIGHTS, from the kiosk's last health report (grey without one)."""
    if health is None:
        return [Light(key, NONE, NO_REPORT) for key, _ in LIGHTS]
    out = []
    for device in f.DEVICES:
        d = health.devices.get(device)
        if d is None:
            out.append(Light(device, NONE, NO_REPORT))
        elif d.state == "ok" and device == "microphone" and echo_behind(health):
            out.append(Light(device, WARN, N_("works, but its echo canceller falls behind"), detail="echo_behind",
                             name=d.name))
        else:
            out.append(Light(device, _DEVICE_LEVEL[d.state], _DEVICE_TEXT[d.state], detail=d.fault, name=d.name))
    out += [temperature(health), disk(health), connection(health)]
    return out


def echo_behind(h: f.KioskHealth) -> bool:
    """The microphone's echo canceller fell behind lately (the fault is counted; the microphone itself works)."""
    return any(fault.code == "echo_behind" and fault.last_s_ago < ECHO_BEHIND_RECENT_S for fault in h.faults)


def temperature(h: f.KioskHealth) -> Light:
    now, temp = set(h.throttling), h.cpu_temp_c
    shown = {"celsius": f"{temp:.0f}"} if temp is not None else {}
    if "under_voltage" in now:
        return Light("temperature", BAD, N_("power supply too weak"))
    if "throttled" in now or (temp is not None and temp >= HOT_C):
        return Light("temperature", BAD, N_("too hot (%(celsius)s °C), slowed down") if shown
                     else N_("slowed down by the firmware"), shown)
    if now or (temp is not None and temp >= WARM_C):
        return Light("temperature", WARN, N_("warm (%(celsius)s °C)") if shown else N_("near its limits"), shown)
    if temp is None:
        return Light("temperature", NONE, N_("not measured"))
    if h.throttling_since_boot:
        return Light("temperature", WARN, N_("%(celsius)s °C, was slowed down since start"), shown)
    return Light("temperature", OK, N_("%(celsius)s °C"), shown)


def disk(h: f.KioskHealth) -> Light:
    if h.data_used_bytes is None or not h.data_total_bytes:
        return Light("disk", NONE, N_("not measured"))
    share = h.data_used_bytes / h.data_total_bytes
    shown = {"percent": f"{share * 100:.0f}"}
    if share >= DISK_BAD:
        return Light("disk", BAD, N_("%(percent)s %% full"), shown)
    return Light("disk", WARN if share >= DISK_WARN else OK, N_("%(percent)s %% used"), shown)


def connection(h: f.KioskHealth) -> Light:
    if h.rtt_ms is None:
        return Light("connection", NONE, N_("not measured"))
    shown = {"ms": f"{h.rtt_ms:.0f}"}
    level = BAD if h.rtt_ms >= RTT_BAD_MS else WARN if h.rtt_ms >= RTT_WARN_MS else OK
    return Light("connection", level, N_("%(ms)s ms round trip"), shown)
