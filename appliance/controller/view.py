"""What the kiosk page shows: one immutable snapshot, sent to the page as JSON on every change."""
from __future__ import annotations

import datetime as dt
import enum
from dataclasses import asdict, dataclass, field


class Screen(str, enum.Enum):
    IDLE = "idle"          # "Drücken Sie den Knopf", open offices, language choice
    CHOOSING = "choosing"  # pick a department (touch, or short press moves / long press selects)
    CONSENT = "consent"    # video call notice; confirm with the button
    WAITING = "waiting"    # position, expected wait, clerk's message; long press cancels
    IN_CALL = "in_call"    # clerk large, own picture small; button hangs up
    ENDED = "ended"        # "Ihr Gespräch wurde beendet. Es wurde nichts gespeichert."
    FAULT = "fault"        # the unit itself is broken (camera missing, token refused or used by another unit)
    SELFTEST = "selftest"  # the installer's check of every part (appliance/selftest/)
    ENROL = "enrol"        # not enrolled yet: a code (and its QR code) to claim the unit in central, the serial
    BOOKING = "booking"    # "I have an appointment": the booking's QR code held up, or its code typed (see BookingScreen)


@dataclass(frozen=True)
class DepartmentChoice:
    slug: str
    name: str
    open: bool
    next_opening: str | None = None  # ISO 8601
    bookable: bool = False           # takes booked appointments: the kiosk offers "I have an appointment"


@dataclass(frozen=True)
class Participant:
    """Someone else in the call besides the clerk (an interpreter, a colleague), shown as a tile."""
    peer: str    # central's id of them in this call; the page streams their picture by it
    role: str    # protocol/participants.py Role: "interpreter" | "colleague" (the page translates it)
    label: str   # what central says to show with it, e.g. the interpreter's language


@dataclass(frozen=True)
class EnrolScreen:
    """What the enrolment screen shows; without a code while connecting to central."""
    serial: str
    code: str | None = None
    claim_url: str | None = None
    qr: str | None = None              # the claim URL as a QR code: an SVG data: URI, made on the unit
    expires_in_s: int | None = None
    unreachable: bool = False          # the last attempt to reach central failed


def department_choices(departments) -> tuple[DepartmentChoice, ...]:
    """A welcome's departments (protocol.messages.DepartmentInfo) as the screens show them."""
    return tuple(DepartmentChoice(d.slug, d.name, d.open, d.next_opening, d.bookable) for d in departments)


# CHOOSING's entry after the open departments (never a department's slug): the button reaches the
# appointment screen too.
APPOINTMENT = ":appointment"


@dataclass(frozen=True)
class BookingScreen:
    """The appointment screen (appliance/controller/booking.py), one step at a time.

    ``step``: "scanning" (camera on, looking for the QR code) | "typing" (the on-screen keypad) |
    "checking" (asked central) | "found" (the appointment, confirm to queue) | "problem".
    ``hint`` while scanning or typing: "no_code_seen" (nothing read for a while: type it instead?),
    "not_a_booking" (a QR code that is not an appointment's), "invalid_code" (typed code not valid),
    "no_camera" (the camera or the decoder cannot read codes now: typing only).
    ``problem``: "booking_unknown" | "booking_other_time" | "closed" | "rate_limited" | "unreachable".
    """

    step: str = "scanning"
    hint: str | None = None
    code: str | None = None           # the code read or typed, normalised (shown as 7K3M-9QX2)
    department: str | None = None     # from central's answer
    slot_start: str | None = None     # ISO 8601 with the town's offset
    slot_end: str | None = None
    problem: str | None = None


@dataclass(frozen=True)
class View:
    screen: Screen = Screen.IDLE
    language: str = "de"
    location: str = ""
    online: bool = False                      # connection to central
    departments: tuple[DepartmentChoice, ...] = ()
    languages: tuple[str, ...] = ()           # offered (central's settings); empty: every shipped language
    selected: str | None = None               # highlighted department (choosing/consent)
    position: int | None = None
    expected_wait_s: int | None = None
    message: str | None = None                # the clerk's short text, while waiting
    # idle: "closed" | "unknown_department" | "already_waiting" | "unreachable"; waiting: "transferred" | "call_failed";
    # in_call: "camera_failed" (the call goes on audio-only), "video_rejected" (the clerk's browser took no
    # video: audio only)
    notice: str | None = None
    next_opening: str | None = None           # with notice "closed"
    fault: str | None = None                  # "token_refused" | "replaced" | "camera" | "microphone" | "speaker"
    ended_reason: str | None = None
    microphone_on: bool = False
    camera_on: bool = False
    participants: tuple[Participant, ...] = ()  # in_call: the guests, in the order they joined
    # selftest: {"started_by", "items": [{"item", "state": checking|waiting|pass|fail|skipped, "fault", "device"}],
    #            "level": 0..1 (microphone meter), "asking": "press" | None, "done": bool}
    selftest: dict | None = None
    enrol: EnrolScreen | None = None          # with ENROL (appliance/fleet/enrol.py)
    restart_at: str | None = None             # idle: the unit restarts then for an update (ISO 8601; appliance/update/)
    booking: BookingScreen | None = None      # with BOOKING
    extra: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        data = asdict(self)
        data["screen"] = self.screen.value
        return data


def openings_while_closed(view: View, now: dt.datetime) -> list[dt.datetime | None] | None:
    """While every department the kiosk offers is closed: their next openings (None where unknown).

    None when one is open, or its opening has passed and central has not said so yet, and when the
    kiosk cannot tell (offline, or no department offered). The rule the dark screen and the update
    window both follow.
    """
    if not view.online or not view.departments:
        return None
    openings = []
    for d in view.departments:
        at = instant(d.next_opening)
        if d.open or (at is not None and at <= now):
            return None
        openings.append(at)
    return openings


def instant(iso: str | None) -> dt.datetime | None:
    """An ISO 8601 time from central; None if missing or unreadable; UTC if it names no zone."""
    if not iso:
        return None
    try:
        at = dt.datetime.fromisoformat(iso)
    except ValueError:
        return None
    return at if at.tzinfo else at.replace(tzinfo=dt.UTC)
