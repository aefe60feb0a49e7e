"""Central's hub alone, without sockets: its CPU per visit with the scale benchmark's consoles and departments.

A visit here is what the hub does for one over the wire: ``visit.request`` decoded and handled (queued,
``queue.joined`` encoded once and queued to the department's consoles), then ``visit.cancel`` (``queue.left``,
``visit.ended``, the places behind it). The links only count frames. Measured as this thread's CPU time, which
the machine's other work hardly changes, so a change in the hub's own work shows here even when the
end-to-end steps, sharing two cores with the load generator and everyone else, cannot tell it from noise.
"""
from __future__ import annotations

import json
import random
import time

from bench._scale.seed import department_slugs, plan_clerks

ROUNDS = 2   # visits per kiosk: within central's quick succession (VISIT_REQUESTS), so none is refused


class CountingLink:
    """The hub's side of a peer's connection, keeping only the last frame."""
    closed = False

    def __init__(self) -> None:
        self.frames = 0
        self.last = ""

    def send(self, frame: str) -> None:
        self.frames += 1
        self.last = frame

    def close(self) -> None:
        self.closed = True


def hub_cpu_s_per_1000_visits(departments: int, kiosks: int, clerks: int, seed_value: int = 13) -> float:
    """Build a hub with these peers (all connected, every department open) and time ROUNDS visits per kiosk."""
    from central.hours import OfficeHours
    from central.live.hub import Hub, KioskPeer, StaffPeer
    from central.live.ice import IceServers
    from central.rooms import WaitingRooms
    from central.rooms.estimate import WaitEstimator
    from central.rooms.resume_token import ResumeTokens
    from central.seed import ALWAYS
    from central.storage.database import Department, Kiosk, Staff
    from protocol import messages as m
    from protocol.codec import decode

    slugs = department_slugs(departments)
    hub = Hub(rooms=WaitingRooms(), estimator=WaitEstimator(300),
              departments={s: Department(i + 1, s, s, ("de",), OfficeHours.from_dict(ALWAYS), i)
                           for i, s in enumerate(slugs)},
              ice=IceServers(), record_visit=lambda *_: None, record_call_failure=lambda *_: None,
              tokens=ResumeTokens("bench-" * 8, 3600))
    for i, served in enumerate(plan_clerks(slugs, clerks, random.Random(seed_value)), start=1):
        hub.staff_connected(StaffPeer(Staff(i, f"c{i}", f"Clerk {i}", "clerk", True, frozenset(served)),
                                      CountingLink()))
    peers = []
    for i in range(1, kiosks + 1):
        peer = KioskPeer(Kiosk(i, f"Kiosk {i}", False), CountingLink())
        hub.kiosk_connected(peer)
        peers.append((peer, json.dumps({"v": 1, "type": "visit.request", "department": slugs[(i - 1) % len(slugs)],
                                        "language": "de"})))
    visits = 0
    t0 = time.thread_time()
    for _ in range(ROUNDS):
        for peer, request in peers:
            hub.kiosk_message(peer, decode(request, m.KIOSK_TO_CENTRAL))
            visit_id = json.loads(peer.link.last)["visit_id"]   # visit.queued
            hub.kiosk_message(peer, decode(json.dumps({"v": 1, "type": "visit.cancel", "visit_id": visit_id}),
                                           m.KIOSK_TO_CENTRAL))
            visits += 1
    return 1000 * (time.thread_time() - t0) / visits
