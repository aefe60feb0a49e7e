"""The fleet's messages: enrolment by code, health reports, remote settings, actions and the self-test.

Enrolment runs on its own socket (``/ws/enrol``), before the unit has a token: the unit says who
it is, central shows it a one-time code, and once an admin claims the code central sends the
token over the same connection. Everything else travels on the kiosk's one WebSocket
(``/ws/kiosk``) beside the visits (directions in protocol/messages.py).

Nothing here may carry personal data: faults are codes, never free text.
"""
from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from protocol.base import Label, Language, Message, Slug, VisitId

# -- vocabulary ------------------------------------------------------------------

Device = Literal["camera", "microphone", "speaker", "button"]
DEVICES: tuple[Device, ...] = ("camera", "microphone", "speaker", "button")

# Every fault a kiosk can report, defined once. Codes only: a free text could carry personal data.
FaultCode = Literal[
    "camera_missing",          # no camera found (unplugged, ribbon cable loose)
    "camera_failed",           # the camera stopped delivering pictures, or would not start
    "microphone_missing",
    "microphone_failed",       # the microphone stopped delivering sound, or would not start
    "microphone_silent",       # self-test: the microphone delivers only silence
    "speaker_failed",          # the speaker device refused the sound
    "speaker_missing",         # no speaker found (the USB speaker or speakerphone is unplugged)
    "tone_not_heard",          # self-test: the test tone from the speaker did not reach the microphone
    "echo_behind",             # the echo canceller fell behind the microphone (the unit's CPU is too busy); the
                               # microphone works, so this is only counted, never the microphone's state
    "button_not_pressed",      # self-test: nobody pressed the call button when asked
    "network_down",            # no network address / no route
    "central_unreachable",     # central did not answer
    "clock_unsynchronised",    # the clock has not been set by NTP (the Pi has no RTC)
    "not_enrolled",            # the unit has no token yet
    "call_media_failed",       # a call's media did not connect
    "settings_rejected",       # settings from central could not be applied
    "data_partition_full",     # the data partition is (nearly) full
    "overheated",              # the CPU reached its temperature limit
    "under_voltage",           # the power supply is too weak (Pi firmware flag)
    "software_error",          # the appliance caught an unexpected error
]
FAULT_CODES: tuple[str, ...] = FaultCode.__args__
# A health report lists the faults seen since start, one entry per code (and device), the most recent
# ones when there are more. As many as there are codes, so a unit that saw every fault can say so, and the
# limit grows with each new code: an older kiosk's report, naming fewer, stays valid. (Codes are only ever
# added: one removed would make older kiosks' reports naming it invalid anyway.)
MAX_RECENT_FAULTS = len(FAULT_CODES)

SelftestItemName = Literal["camera", "microphone", "sound_loop", "button", "network", "central", "clock",
                           "enrolment"]
SELFTEST_ITEMS: tuple[str, ...] = SelftestItemName.__args__

Throttling = Literal["under_voltage", "frequency_capped", "throttled", "soft_temperature_limit"]

EnrolCode = Annotated[str, StringConstraints(pattern=r"^[2-9A-HJ-NP-Z]{4}-[2-9A-HJ-NP-Z]{4}$"), Field(
    description="Eight characters in two groups (`K7MP-4QX9`), from an alphabet without 0/O and 1/I, so it can "
                "be read off a screen and typed without mistakes.")]
Serial = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._:-]{4,64}$"),
                   Field(description="The unit's serial number (the Pi's, or the machine id on other hardware).")]
KioskToken = Annotated[str, StringConstraints(pattern=r"^[0-9]{1,9}\.[A-Za-z0-9_-]{32,64}$"),
                       Field(description="The kiosk's secret: `<kiosk id>.<random>`.")]
# A call's upload budget (kbit/s), shared by the copies of the citizen's picture in a call with guests (a mesh
# kiosk sends one per peer). The default: a call with the clerk alone sends what it always sent (the camera's
# 1.5 Mbit/s and the voice, 1.6 Mbit/s) and fits a village DSL/LTE uplink of 2.5 Mbit/s with room to spare;
# with a guest the two copies share the same 2 Mbit/s instead of needing 3.3. A site with less upload sets less.
DEFAULT_CALL_UPLOAD_KBIT_S = 2000
CALL_UPLOAD_KBIT_S_RANGE = (300, 20000)  # below 300, even one copy of the picture falls apart into blocks

ActionId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{8,32}$")]
Version = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._+~-]{1,64}$"),
                    Field(description="Software version, e.g. `0.3.0+1a2b3c4d5e6f`.")]


class _Object(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


# -- enrolment: unit -> central (/ws/enrol) ---------------------------------------

class EnrolHello(Message):
    """First message of a unit without a token: who it is. Answered with `enrol.code`."""
    type: Literal["enrol.hello"]
    serial: Serial
    model: Label = Field(description="Hardware model, e.g. `Raspberry Pi 4 Model B Rev 1.5`.")
    version: Version


# -- enrolment: central -> unit ----------------------------------------------------

class EnrolCodeOffer(Message):
    """The code to show on the unit's screen. A fresh one follows when it expires."""
    type: Literal["enrol.code"]
    code: EnrolCode
    expires_in_s: Annotated[int, Field(ge=1, le=3600, description="Seconds until this code stops working.")]
    claim_url: Annotated[str, StringConstraints(pattern=r"^https?://", max_length=300)] = Field(
        description="Central's page to claim this unit, with the code filled in (for the QR code).")


class EnrolDone(Message):
    """An admin claimed the code: the unit's token. Store it on the data partition and connect as a kiosk."""
    type: Literal["enrol.done"]
    token: KioskToken
    location: Label = Field(description="Where the admin says the unit stands.")


# -- health, settings and the self-test: kiosk -> central --------------------------

class DeviceHealth(_Object):
    """One device's state, from the last self-test or from live use, whichever is newer."""
    state: Literal["ok", "failed", "missing", "unknown"] = Field(
        description="`unknown`: neither a self-test nor a call has used it since start.")
    source: Literal["selftest", "live", "none"] = Field(description="Where `state` was learned.")
    fault: FaultCode | None = Field(None, description="With `failed`/`missing`: which fault.")
    name: Label | None = Field(None, description="The device in use, e.g. `imx708` or `USB Audio`.")


class RecentFault(_Object):
    """A fault seen since the unit started, counted; never more detail than the code."""
    code: FaultCode
    device: Device | None = None
    count: Annotated[int, Field(ge=1, le=1_000_000)]
    last_s_ago: Annotated[int, Field(ge=0, le=10 * 365 * 86400, description="Seconds since it last happened.")]


class KioskHealth(Message):
    """The kiosk's health, every 30 s and whenever a device changes state. No reply."""
    type: Literal["kiosk.health"]
    version: Version
    slot: Literal["A", "B"] | None = Field(None, description="The root slot running (A/B updates).")
    uptime_s: Annotated[int, Field(ge=0, le=10 * 365 * 86400)]
    boot_reason: Literal["power_on", "reboot", "watchdog", "update", "rollback", "unknown"]
    devices: dict[Device, DeviceHealth] = Field(description="Camera, microphone, speaker and button.")
    cpu_temp_c: Annotated[float, Field(ge=-40, le=150)] | None = None
    throttling: list[Throttling] = Field([], max_length=4, description="Pi firmware flags set now.")
    throttling_since_boot: list[Throttling] = Field([], max_length=4)
    data_used_bytes: Annotated[int, Field(ge=0, le=2**50)] | None = None
    data_total_bytes: Annotated[int, Field(ge=0, le=2**50)] | None = None
    rtt_ms: Annotated[float, Field(ge=0, le=600_000)] | None = Field(
        None, description="Round trip to central (last `ping` → `pong`).")
    faults: list[RecentFault] = Field([], max_length=MAX_RECENT_FAULTS, description=(
        f"Faults since start, most recent first: one entry per code and device, at most {MAX_RECENT_FAULTS} "
        "(as many as there are fault codes)."))
    settings_version: Annotated[int, Field(ge=0, le=2**31)] = Field(
        0, description="The version of the settings in use (0: none from central yet).")


class SettingsApplied(Message):
    """The kiosk applied (and stored) `kiosk.settings` of this version. No reply."""
    type: Literal["kiosk.settings.applied"]
    version: Annotated[int, Field(ge=1, le=2**31)]


class SelftestItem(_Object):
    item: SelftestItemName
    result: Literal["pass", "fail", "skipped"]
    fault: FaultCode | None = None
    device: Label | None = Field(None, description="The device tested, where one was.")


class SelftestReport(Message):
    """The result of a self-test, item by item. No reply."""
    type: Literal["kiosk.selftest"]
    started_by: Literal["button", "central"]
    items: list[SelftestItem] = Field(max_length=len(SELFTEST_ITEMS))


class ActionResult(Message):
    """What became of a `kiosk.action`. No reply."""
    type: Literal["kiosk.action.result"]
    action_id: ActionId
    outcome: Literal["started", "busy", "failed"] = Field(
        description="`busy`: a citizen is waiting or in a call and the action was not forced.")


class DeviceFault(Message):
    """A device failed (at start, while idle, or in a call: then with `visit_id`). No reply to the kiosk.

    In a call, a failed camera lets the call go on audio-only and central tells the clerk
    (`call.notice`); so does a failed speaker (the citizen can no longer hear the clerk, but is
    still seen and heard); a failed microphone ends the call (`visit.hangup` with `reason`).
    """
    type: Literal["device.fault"]
    device: Device
    fault: FaultCode
    visit_id: VisitId | None = None


# -- settings and actions: central -> kiosk -----------------------------------------

class KioskSettings(_Object):
    """Everything city IT sets per kiosk (or for all kiosks) in central's fleet page."""
    version: Annotated[int, Field(ge=1, le=2**31, description="Grows with every change.")]
    location: Annotated[str, StringConstraints(min_length=1, max_length=120)] = Field(
        description="Shown on the kiosk and to clerks, e.g. `Bücherei Musterdorf`.")
    departments: list[Slug] = Field(max_length=50, description="The departments offered, in this order.")
    default_language: Language
    languages: list[Language] = Field(min_length=1, max_length=12, description="Languages offered, in order.")
    volume_pct: Annotated[int, Field(ge=0, le=100)]
    mic_gain_db: Annotated[int, Field(ge=-20, le=20)]
    brightness_pct: Annotated[int, Field(ge=10, le=100)]
    screen_off_outside_hours: bool = Field(
        description="Switch the screen off while every offered department is closed; a press wakes it.")
    relay_only: bool = Field(False, description=(
        "Media only through the city's TURN server: the kiosk offers no address of its own and sends nothing "
        "straight to the other side, for sites whose network must not exchange packets with peers' addresses. "
        "Calls need central's TURN server then."))
    call_upload_kbit_s: Annotated[int, Field(ge=CALL_UPLOAD_KBIT_S_RANGE[0], le=CALL_UPLOAD_KBIT_S_RANGE[1])] = Field(
        DEFAULT_CALL_UPLOAD_KBIT_S, description=(
            "The most a call sends from the kiosk, in kbit/s (the site's uplink, less what else uses it). With a "
            "guest the kiosk sends its picture to each peer: each copy gets an equal share, and all of it again "
            "when the guest leaves."))


class SettingsMessage(Message):
    """The kiosk's settings; sent after `welcome` and on every change. Answered with `kiosk.settings.applied`."""
    type: Literal["kiosk.settings"]
    settings: KioskSettings


class KioskAction(Message):
    """IT asks the kiosk to do something now. Answered with `kiosk.action.result`."""
    type: Literal["kiosk.action"]
    action_id: ActionId
    action: Literal["selftest", "restart", "reboot"] = Field(
        description="`restart`: the appliance service; `reboot`: the whole unit.")
    force: bool = Field(False, description="Also while a citizen waits or is in a call (IT confirmed it).")


# -- central -> staff console ---------------------------------------------------------

class CallNotice(Message):
    """Something the clerk should know about the call, e.g. the kiosk's camera failed (audio goes on)."""
    type: Literal["call.notice"]
    visit_id: VisitId
    notice: Literal["kiosk_camera_failed", "kiosk_speaker_failed"] = Field(
        description="`kiosk_camera_failed`: the citizen can still hear and be heard, but not be seen. "
                    "`kiosk_speaker_failed`: the citizen can still be seen and heard, but no longer hears "
                    "the clerk.")

