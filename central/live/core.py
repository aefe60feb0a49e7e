"""What both sides of the hub share: the state, departments, places, estimates and fan-out.

Every public method of the hub is synchronous and only queues frames on links, so
each runs atomically on the event loop: a visit is either picked up by one clerk
or still waiting, never both. The hub is assembled from role mixins, each its own
module, on top of this core::

    HubCore (core.py)  <-  VisitEndings (endings.py)  <-  CallSetup (calls.py)  <-  GuestSide (guest_side.py)
                           <-  GuestRejoins (guest_rejoin.py)
                           <-  StaffSide (staff_side.py), VisitResumption (resume.py, with BookedVisits)
                           <-  KioskSide (kiosk_side.py), HomeSide (home_side.py), TakeOver (takeover.py)
    Hub(KioskSide, StaffSide, UpdateSide, HomeSide, TakeOver) (hub.py)
"""
from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from central.fleet.registry import FleetRegistry
from central.live import ice
from central.live.consoles import StaffPeers
from central.live.ice import IceServers
from central.live.limits import (
    BOOKING_LOOKUPS,
    FLEET_REPORTS,
    GUEST_INVITES,
    HOME_MESSAGES,
    HOME_VISIT_REQUESTS,
    UPDATE_REPORTS,
    VISIT_REQUESTS,
    Buckets,
)
from central.live.link import Link
from central.live.peers import HomePeer, KioskPeer
from central.live.relay import SignalingRelay
from central.rooms import Rooms, Visit, VisitState
from central.rooms.estimate import WaitEstimator
from central.rooms.guest_links import GuestLinks
from central.rooms.resume_token import ResumeTokens
from central.storage.bookings import BookingStore
from central.storage.database import Department
from central.storage.staff_browsers import ClerkVideo
from central.updates.book import UpdateBook
from protocol import messages as m
from protocol.codec import encode
from protocol.errors import ErrorCode, ProtocolError

log = logging.getLogger(__name__)

# (department, wait seconds or None, call seconds or None, day) -> stored as anonymous counters
RecordVisit = Callable[[str, "float | None", "float | None", dt.date], None]
# (department, day) -> one more call whose media did not connect, counted anonymously
RecordCallFailure = Callable[[str, dt.date], None]
# (staff id, what their browser answered to the kiosk's video) -> kept per account for IT (clerk_video.py)
RecordClerkVideo = Callable[[int, ClerkVideo], None]


@dataclass
class DepartmentStatus:
    department: Department
    open: bool
    next_opening: dt.datetime | None
    clerks_available: int
    clerks_busy: int
    waiting: int
    typical_wait_s: int


@dataclass
class HubCore:
    rooms: Rooms  # in memory (WaitingRooms) or written through to Redis (RedisRooms)
    estimator: WaitEstimator
    departments: dict[str, Department]
    # The STUN/TURN servers with fresh TURN credentials per peer: ice_for() is the only way to them.
    ice: IceServers
    record_visit: RecordVisit
    record_call_failure: RecordCallFailure
    tokens: ResumeTokens
    resume_grace_s: float = 120.0
    call_connect_timeout_s: float = 30.0
    now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)
    kiosks: dict[int, KioskPeer] = field(default_factory=dict)
    staff: StaffPeers = field(default_factory=StaffPeers)  # also by department (consoles.py)
    # Citizens' browsers at home by connection id (home_side.py): the other kind of citizen endpoint.
    homes: dict[str, HomePeer] = field(default_factory=dict)
    # Visitors from home a department takes at a time (waiting or in a call), unless it sets its own.
    online_cap: int = 10
    # Client address -> visit requests it may still make; connection id -> messages it may still send.
    home_requests: Buckets = field(default_factory=lambda: Buckets(HOME_VISIT_REQUESTS))
    home_messages_left: Buckets = field(default_factory=lambda: Buckets(HOME_MESSAGES))
    # visit id -> timer that ends the visit unless its kiosk (_grace) or clerk comes back (endings.py)
    _grace: dict[str, asyncio.TimerHandle] = field(default_factory=dict)
    _clerk_grace: dict[str, asyncio.TimerHandle] = field(default_factory=dict)
    # A call's offers, answers and candidates pass through here: limited and filtered (relay.py).
    relay: SignalingRelay = field(default_factory=SignalingRelay)
    # Kiosk id -> how many visits it may still request now (kiosk_side.py); a flood is cut here.
    visit_requests: Buckets = field(default_factory=lambda: Buckets(VISIT_REQUESTS))
    booking_lookups: Buckets = field(default_factory=lambda: Buckets(BOOKING_LOOKUPS))
    # visit id -> timer that gives up on a call whose media has not connected (calls.py)
    _media: dict[str, asyncio.TimerHandle] = field(default_factory=dict)
    # What city IT sees of each kiosk (central/fleet/): online, health, self-test, settings applied.
    fleet: FleetRegistry = field(default_factory=FleetRegistry)
    # (kiosk id, report type) -> how many fleet reports it may still send now (kiosk_side.py)
    fleet_reports: Buckets = field(default_factory=lambda: Buckets(FLEET_REPORTS))
    # The live rollout of an update and each kiosk's reports on it (central/updates/, update_side.py).
    updates: UpdateBook = field(default_factory=UpdateBook)
    # Kiosk id -> how many update.status reports it may still send now (update_side.py)
    update_reports: Buckets = field(default_factory=lambda: Buckets(UPDATE_REPORTS))
    stopping: bool = False  # central shuts down: visits are kept in the kiosks' tokens, not ended
    record_clerk_video: RecordClerkVideo = lambda staff_id, seen: None
    # Booked appointments (central/live/booked_visits.py); None: every booking code is unknown.
    bookings: BookingStore | None = None
    _booking_writes: set[asyncio.Task] = field(default_factory=set)  # releases of bookings under way
    bookable: frozenset[str] = frozenset()  # departments that take appointments (central/live/booking_lookup.py)
    # Interpreters and colleagues invited into calls by one-time links (guest_side.py); with several centrals
    # the unused links are written through to Redis (RedisGuestLinks).
    guest_links: GuestLinks = field(default_factory=GuestLinks)
    # Guest peer id -> timer that drops a guest whose connection broke unless they come back (guest_rejoin.py)
    _guest_grace: dict[str, asyncio.TimerHandle] = field(default_factory=dict)
    # Staff id -> how many guest links the clerk may still create now (guest_side.py)
    guest_invites: Buckets = field(default_factory=lambda: Buckets(GUEST_INVITES))

    def __post_init__(self) -> None:
        # The order of a waiting room depends on the time (a booked slot begins): the hub's clock decides.
        self.rooms.clock = lambda: self.now().timestamp()

    # == ICE servers ===========================================================
    def ice_for(self, who: str) -> list[m.IceServer]:
        """The ``ice_servers`` for one peer: the configured list, and TURN credentials of its own that expire
        (central/live/ice.py). ``who`` is central.live.ice's kiosk(id), staff(id), HOME or GUEST."""
        return self.ice.for_peer(who)

    # == departments ===========================================================
    def set_departments(self, departments: list[Department]) -> None:
        self.departments = {d.slug: d for d in departments}

    def department_info(self) -> list[m.DepartmentInfo]:
        now = self.now()
        out = []
        for d in self.departments.values():
            is_open = d.hours.is_open(now)
            nxt = None if is_open else d.hours.next_opening(now)
            out.append(m.DepartmentInfo(slug=d.slug, name=d.name, open=is_open,
                                        next_opening=nxt.isoformat() if nxt else None, languages=list(d.languages),
                                        bookable=d.slug in self.bookable))
        return out

    def status(self) -> list[DepartmentStatus]:
        now = self.now()
        out = []
        for d in self.departments.values():
            clerks, free = self._clerks(d.slug)
            waiting = len(self.rooms.waiting(d.slug))
            is_open = d.hours.is_open(now)
            out.append(DepartmentStatus(
                d, is_open, None if is_open else d.hours.next_opening(now), free, clerks - free, waiting,
                self.estimator.expected_wait_s(d.slug, waiting + 1, clerks, free)))
        return out

    # == places and estimates ==================================================
    def _issue_token(self, visit: Visit) -> str:
        """A fresh resume token for the visit's current place; the kiosk gets it with the next message."""
        visit.resume_token = self.tokens.issue(visit)
        return visit.resume_token

    def _tell_place(self, visit: Visit) -> tuple[int, int]:
        """The visit's (position, expected wait), remembered as told to its kiosk."""
        visit.last_told = self._estimate(visit)
        return visit.last_told

    @staticmethod
    def _require(visit: Visit, state: VisitState, detail: str) -> None:
        if visit.state is not state:
            raise ProtocolError(ErrorCode.WRONG_STATE, detail)

    def _clerks(self, department: str) -> tuple[int, int]:
        """(clerks on duty, of which available) for a department."""
        on_duty = free = 0
        for peer in self.staff.serving(department):
            if peer.presence != "away":
                on_duty += 1
                free += peer.presence == "available"
        return on_duty, free

    def _estimate(self, visit: Visit) -> tuple[int, int]:
        position = self.rooms.position(visit)
        clerks, free = self._clerks(visit.department)
        return position, self.estimator.expected_wait_s(visit.department, position, clerks, free)

    def _update_positions(self, *departments: str) -> None:
        """Tell every waiting kiosk of these departments its place and wait, if either changed."""
        for department in set(departments):
            clerks, free = self._clerks(department)
            for position, visit in enumerate(self.rooms.waiting(department), start=1):
                told = (position, self.estimator.expected_wait_s(department, position, clerks, free))
                if told == visit.last_told:
                    continue
                visit.last_told = told
                if (link := self._citizen_link(visit)) is not None:
                    link.send(encode(m.VisitPosition(type="visit.position", visit_id=visit.id,
                                                     department=department, position=told[0],
                                                     expected_wait_s=told[1])))

    # == fan-out ===============================================================
    def _to_department(self, department: str, frame: str) -> None:
        for peer in self.staff.serving(department):
            peer.link.send(frame)

    def _to_kiosk(self, visit: Visit, message: m.Message) -> None:
        """Send to the visit's citizen, a kiosk or a browser at home, if connected (in its grace, it hears
        on resuming)."""
        if (link := self._citizen_link(visit)) is not None:
            link.send(encode(message))

    # == the citizen's end: a kiosk or a browser at home =========================
    def _citizen_link(self, visit: Visit) -> Link | None:
        """The connection of the visit's citizen, or None while it is away."""
        if visit.home_id is not None:
            home = self.homes.get(visit.home_id)
            return home.link if home is not None else None
        kiosk = self.kiosks.get(visit.kiosk_id) if visit.kiosk_id is not None else None
        return kiosk.link if kiosk is not None else None

    def _citizen_ice(self, visit: Visit) -> list[m.IceServer]:
        """The ICE servers for the visit's citizen (their TURN user name says kiosk-N or home)."""
        return self.ice_for(ice.kiosk(visit.kiosk_id) if visit.kiosk_id is not None else ice.HOME)
