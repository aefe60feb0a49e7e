"""A peer that stops reading costs central a bounded number of bytes, and then its connection.

First the Link alone, with a peer whose socket never accepts another byte; then
through central's real sockets: a clerk's console that stops reading while the
kiosk in its call sends 30 KB offers is cut off, and everybody else goes on.
"""
from __future__ import annotations

import asyncio

from central.live.limits import Rate
from central.live.link import MAX_BACKLOG_BYTES, Link
from central.live.relay import SignalingRelay

OFFER = "v=0\r\n" + "a=x-padding:" + "p" * 30_000 + "\r\n"  # 30 KB, as in the flood that was found


class StalledPeer:
    """A socket whose send buffer is full: every send waits forever."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.aborted = self.closed = False

    async def send_str(self, frame: str) -> None:
        self.sent.append(frame)
        await asyncio.Event().wait()

    async def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True


class ReadingPeer(StalledPeer):
    async def send_str(self, frame: str) -> None:
        self.sent.append(frame)
        await asyncio.sleep(0)


async def test_a_peer_that_stops_reading_is_cut_off_once_its_backlog_passes_the_byte_limit():
    peer = StalledPeer()
    link = Link(peer.send_str, peer.close, peer.abort)
    await asyncio.sleep(0)
    frame = '{"type":"rtc.offer","sdp":"' + OFFER + '"}'
    sent = 0
    while not link.closed:
        link.send(frame)
        sent += 1
        assert link.queued_bytes <= MAX_BACKLOG_BYTES
        assert sent < 100, "a 30 KB frame at a time, 3 MB were queued for a peer that reads nothing"
    # 1 MiB of frames went in (the writer never got a turn), the next one dropped the connection.
    assert sent == MAX_BACKLOG_BYTES // len(frame) + 1
    assert link.cut_off and peer.aborted and link.queued_bytes == 0
    link.send(frame)  # later frames are dropped, not queued
    assert link.queued_bytes == 0
    await link.wait_closed()


async def test_the_limit_counts_bytes_not_characters():
    peer = StalledPeer()
    link = Link(peer.send_str, peer.close, peer.abort, max_backlog_bytes=1000)
    await asyncio.sleep(0)
    link.send("x")  # taken by the writer, stuck in the socket
    await asyncio.sleep(0)
    link.send("€" * 300)  # 300 characters, 900 bytes
    assert link.queued_bytes == 900 and not link.closed
    link.send("€" * 34)  # 102 more bytes: over the limit
    assert link.cut_off and peer.aborted
    await link.wait_closed()


async def test_a_reading_peer_gets_every_frame_in_order_and_then_the_close(monkeypatch):
    peer = ReadingPeer()
    link = Link(peer.send_str, peer.close, peer.abort, max_backlog_bytes=10_000)
    frames = [f"frame {i} " + "y" * 900 for i in range(50)]  # 45 KB in all, never more than 10 KB at once
    for frame in frames:
        link.send(frame)
        assert link.queued_bytes <= 10_000
        await asyncio.sleep(0)
    link.close()
    link.send("after close")
    await link.wait_closed()
    assert peer.sent == frames and peer.closed and not peer.aborted and not link.cut_off


async def test_a_console_that_stops_reading_is_cut_off_and_the_kiosk_goes_on(central):
    """End to end: a kiosk floods its clerk with 30 KB offers; the clerk's console reads nothing."""
    clerk = await central.clerk()
    kiosk = await central.kiosk()
    await kiosk.send(type="visit.request", department="buergerbuero")
    visit_id = (await kiosk.recv("visit.queued"))["visit_id"]
    await clerk.send(type="visit.pickup", visit_id=visit_id)
    await clerk.recv("call.assigned")
    await kiosk.recv("call.start")
    # Unlimited signaling, so the flood reaches the backlog (test_signaling_floods_are_cut_at_the_source
    # shows the limit that normally stops a flooding kiosk long before).
    central.hub.relay = SignalingRelay(sdp=Rate(capacity=10**6, per_second=10**6))
    staff_id = next(iter(central.hub.staff))
    clerk_link = central.hub.staff[staff_id].link
    # From here on the clerk's client reads nothing: its buffers fill, then the kernel's, then central's.

    most_queued, offers = 0, 0
    while staff_id in central.hub.staff:
        await kiosk.send(type="rtc.offer", visit_id=visit_id, sdp=OFFER)
        offers += 1
        await kiosk.send(type="ping")
        await kiosk.recv("pong")  # the kiosk's own connection is served all along
        most_queued = max(most_queued, clerk_link.queued_bytes)
        # Socket buffers on loopback hold a few MB; beyond that only central's backlog could take more.
        assert offers < 1000, f"{offers * len(OFFER) // 1_000_000} MB sent to a console that reads nothing"
    assert clerk_link.cut_off and most_queued <= MAX_BACKLOG_BYTES
    print(f"console cut off after {offers} offers of {len(OFFER)} bytes; most queued {most_queued} bytes")
    # The cut-off console's call waits for it to come back, as after any lost connection.
    assert central.hub.rooms.get(visit_id) is not None
    await kiosk.send(type="ping")
    assert (await kiosk.recv())["type"] == "pong"


async def test_signaling_floods_are_cut_at_the_source(central):
    """A kiosk flooding offers gets rate_limited; its clerk receives the first few and nothing more."""
    from central.live.limits import CALL_SDP

    clerk = await central.clerk()
    kiosk = await central.kiosk()
    await kiosk.send(type="visit.request", department="buergerbuero")
    visit_id = (await kiosk.recv("visit.queued"))["visit_id"]
    await clerk.send(type="visit.pickup", visit_id=visit_id)
    await clerk.recv("call.assigned")
    await kiosk.recv("call.start")

    burst = int(CALL_SDP.capacity)
    for _ in range(burst + 20):
        await kiosk.send(type="rtc.offer", visit_id=visit_id, sdp=OFFER)
    errors = [await kiosk.recv("error") for _ in range(20)]
    assert {(e["code"], e["ref"]) for e in errors} == {("rate_limited", "rtc.offer")}
    assert all(1 <= e["retry_after_s"] <= 1 / CALL_SDP.per_second + 1 for e in errors), errors
    await clerk.quiet(0.5)  # collects what arrives into clerk.inbox
    assert sum(m["type"] == "rtc.offer" for m in clerk.inbox) == burst
    # The clerk's answers are limited on their own account: the kiosk's flood did not use them up.
    await clerk.send(type="rtc.answer", visit_id=visit_id, sdp=OFFER[:200])
    assert (await kiosk.recv("rtc.answer"))["sdp"] == OFFER[:200]
