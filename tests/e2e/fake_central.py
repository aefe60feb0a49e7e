"""A scripted stand-in for central's /ws/staff behind a real console page, and an aiortc kiosk to call it.

The page itself comes from a running central (login, strings, scripts); Playwright routes its WebSocket
here, so a test can say exactly what central says and when: close with 1012, send call.failed, flood arrivals.
Every frame the console sends is validated against protocol/ (STAFF_TO_CENTRAL) and kept.
"""
from __future__ import annotations

import asyncio
import time

from appliance.call.peer import CallPeer
from appliance.hardware.fake.camera import TestPatternTrack
from appliance.hardware.fake.microphone import SyntheticMicrophoneTrack
from protocol import messages as m
from protocol.codec import decode, encode
from protocol.errors import ProtocolError

VISIT = m.WaitingVisit(visit_id="v" * 20, department="buergerbuero", kiosk_location="Rathaus Musterdorf",
                       language="de", arrived_at=time.time() - 60)
DEPARTMENTS = [("buergerbuero", "Bürgerbüro"), ("standesamt", "Standesamt")]


def snapshot(presence: str = "available", waiting: tuple[m.WaitingVisit, ...] = ()) -> m.ConsoleSnapshot:
    return m.ConsoleSnapshot(
        type="console.snapshot", staff_name="Test", presence=presence, ice_servers=[], server_time=time.time(),
        departments=[m.DepartmentQueue(slug=slug, name=name, open=True,
                                       waiting=[v for v in waiting if v.department == slug])
                     for slug, name in DEPARTMENTS],
        transfer_targets=[m.DepartmentInfo(slug=slug, name=name, open=True) for slug, name in DEPARTMENTS])


def waiting_visit(number: int, department: str = "buergerbuero") -> m.WaitingVisit:
    return m.WaitingVisit(visit_id=f"visit{number:016d}", department=department, kiosk_location=f"Kiosk {number}",
                          language="de", arrived_at=time.time())


class FakeCentral:
    """Answers each console connection with a snapshot (unless ``greet`` is off) and records what it sends."""

    def __init__(self) -> None:
        self.sockets: list = []        # Playwright WebSocketRoute, one per connection the page opened
        self.inbox: list[m.Message] = []
        self.invalid: list[str] = []   # frames protocol/ refuses: the console must never send one
        self.greet = True
        self.presence = "available"
        self._arrived = asyncio.Event()  # set on each frame from the console; a waiter clears it before waiting

    async def attach(self, page) -> None:
        await page.route_web_socket("**/ws/staff", self._connected)

    def _connected(self, ws) -> None:
        self.sockets.append(ws)
        ws.on_message(self._received)
        if self.greet:
            ws.send(encode(snapshot(self.presence)))

    def _received(self, frame: str | bytes) -> None:
        try:
            self.inbox.append(decode(frame, m.STAFF_TO_CENTRAL))
        except ProtocolError as err:
            self.invalid.append(f"{err}: {str(frame)[:200]}")
        self._arrived.set()

    def send(self, message: m.Message) -> None:
        """To the console's current connection."""
        self.sockets[-1].send(encode(message))

    def sent_by_console(self, kind: str) -> list[m.Message]:
        return [msg for msg in self.inbox if msg.type == kind]

    async def next(self, kind: str, seconds: float = 15.0) -> m.Message:
        """The first message of ``kind`` the console sent (now or within ``seconds``)."""
        async with asyncio.timeout(seconds):
            while not self.sent_by_console(kind):
                # No await between the check and clear(): a frame cannot slip in unnoticed.
                self._arrived.clear()
                await self._arrived.wait()
        return self.sent_by_console(kind)[0]


class RelayedKiosk:
    """An aiortc kiosk (the appliance's own CallPeer with a test pattern and a tone) whose signalling goes
    through the fake central to the console page, so the console gets a real, live call."""

    def __init__(self, central: FakeCentral, visit: m.WaitingVisit = VISIT) -> None:
        self.central, self.visit = central, visit
        self.peer = CallPeer([], [TestPatternTrack(320, 240), SyntheticMicrophoneTrack()])
        self._relay: asyncio.Task | None = None

    async def call(self) -> None:
        """Assign the call to the console, offer, and relay the console's answer and candidates back."""
        self.central.send(m.CallAssigned(type="call.assigned", visit=self.visit, ice_servers=[]))
        self.central.send(m.RtcOffer(type="rtc.offer", visit_id=self.visit.visit_id, sdp=await self.peer.offer()))
        self._relay = asyncio.get_running_loop().create_task(self._relay_answer())

    async def _relay_answer(self) -> None:
        answer = await self.central.next("rtc.answer")
        await self.peer.accept_answer(answer.sdp)
        done = 0
        while True:  # candidates trickle in after the answer
            candidates = self.central.sent_by_console("rtc.candidate")
            for message in candidates[done:]:
                await self.peer.add_candidate(message.candidate)
            done = len(candidates)
            await asyncio.sleep(0.05)

    async def close(self) -> None:
        if self._relay:
            self._relay.cancel()
        await self.peer.close()


def console_errors(page) -> list[str]:
    """Collects script errors and CSP violations of ``page`` into the returned list."""
    errors: list[str] = []
    def console_message(msg) -> None:
        # The browser asks for /favicon.ico by itself; central has none.
        if msg.type == "error" and not msg.location.get("url", "").endswith("/favicon.ico"):
            errors.append(f"{msg.text} ({msg.location.get('url')})")
    page.on("console", console_message)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    return errors



