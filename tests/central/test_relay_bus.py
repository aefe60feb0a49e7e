"""The plumbing of relayed sockets: envelopes, the ordered publisher on a real Redis, and the leader's
RemoteLink with its bounded backlog (central/cluster/envelope.py, bus.py, remote_link.py)."""
from __future__ import annotations

import asyncio

from central.cluster import envelope as e
from central.cluster.bus import BATCH, Publisher, bundle, subscribe, unbundle
from central.cluster.remote_link import RemoteLink
from central.cluster.remote_peers import MAX_INBOUND_BYTES, Session
from tests.polling import until


def test_an_envelope_carries_any_payload_and_anything_else_is_no_envelope():
    for payload in (b"", b'{"type":"ping"}', "Grüße\n aus dem Rathaus".encode(), bytes(range(256))):
        packed = e.pack(7, "edge1", "peer1", e.TEXT, payload)
        assert e.unpack(packed) == e.Envelope(7, "edge1", "peer1", e.TEXT, payload)
    for junk in (b"", b"no newline", b"7 edge peer\n", b"x edge peer text\n", b"7 \xff peer text\n",
                 b"7 edge peer text extra\n"):
        assert e.unpack(junk) is None


def test_a_bundle_gives_back_its_envelopes_in_order_and_nothing_of_a_broken_tail():
    envelopes = [b"", b"a", bytes(range(256)) * 3, b"\n" * 5]
    assert unbundle(bundle(envelopes)) == envelopes
    assert unbundle(bundle(envelopes)[:-1]) == envelopes[:-1]  # cut short: the last one is not taken
    assert unbundle(b"\x00\x00") == [] and unbundle(b"") == []


async def test_the_publisher_keeps_order_across_batches_and_says_who_no_longer_listens(redis_client):
    got: list[bytes] = []
    subscribed = asyncio.Event()
    listener = asyncio.get_running_loop().create_task(subscribe(redis_client, "test:relay", got.append,
                                                                subscribed.set))
    unheard: list[str] = []
    publisher = Publisher(redis_client, on_unheard=unheard.append, on_failed=lambda exc: None)
    running = asyncio.get_running_loop().create_task(publisher.run())
    try:
        await asyncio.wait_for(subscribed.wait(), 5)
        sent = [f"frame {n}".encode() for n in range(3 * BATCH + 7)]
        for frame in sent:
            assert publisher.publish("test:relay", frame)
        publisher.publish("test:nobody", b"lost")
        await until(lambda: len(got) >= len(sent) and unheard, 10, what="every frame and the unheard channel")
        assert got == sent  # every one, in the order published
        assert unheard == ["test:nobody"] and publisher.queued_bytes == 0
    finally:
        running.cancel()
        listener.cancel()


async def test_a_full_publisher_refuses_and_a_relayed_peer_that_does_not_read_is_cut_off(redis_client):
    publisher = Publisher(redis_client, on_unheard=lambda channel: None, on_failed=lambda exc: None, max_bytes=1000)
    assert publisher.publish("test:relay", b"x" * 900)
    assert not publisher.publish("test:relay", b"x" * 200)  # refused: nothing queued
    assert publisher.publish("test:relay", b"close", force=True)  # a close gets out all the same
    publisher.drop()

    gone = []
    link = RemoteLink(Publisher(redis_client, on_unheard=lambda c: None, on_failed=lambda exc: None), 3, "edge1",
                      "peer1", on_gone=lambda: gone.append(True), max_backlog_bytes=4096)
    link.send("a" * 1000)
    assert link.queued_bytes > 1000 and not link.closed
    for _ in range(4):  # nothing drains it (the publisher does not run): the backlog passes its bound
        link.send("a" * 1000)
    assert link.cut_off and link.closed and gone == [True]
    link.send("after")  # nothing more goes out


async def test_what_a_relayed_peer_sent_and_the_hub_has_not_handled_is_bounded():
    link = RemoteLink(Publisher(None, on_unheard=lambda c: None, on_failed=lambda exc: None), 3, "edge1", "peer1")
    session = Session("edge1", "peer1", link)
    frame = "x" * (64 * 1024)
    taken = 0
    while session.put(frame):  # nothing takes them: the hub waits for the database, say
        taken += 1
        assert taken <= MAX_INBOUND_BYTES // len(frame)
    assert taken == MAX_INBOUND_BYTES // len(frame)
    assert await session.next() == frame  # handled in order, and room again
    assert session.put(frame)
