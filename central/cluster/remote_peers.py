"""The leader serves peers whose WebSockets live on edge centrals (central/cluster/edge.py).

Whatever leads subscribes to ``amtsklingel:relay:up``. Each relayed socket is a session here, with the
same life as a socket of the leader's own (central/live/sockets.py): admitted by the same rules
(central/live/admission.py), given the same kind of peer with a :class:`RemoteLink`, its frames decoded and
handed to the hub one after the other by a task of its own, so a message that waits for the database
holds back the next one of the same peer, and no other. The hub cannot tell the two kinds of peer apart;
its atomicity on this one event loop is what keeps two clerks from picking up the same visit, wherever
their consoles are connected.

An envelope of another term (epoch) is not acted on. A session ends when its edge says the socket closed,
when the hub closes it, when the edge is gone (its presence key ran out, or nobody listens on its channel
any more), or when this central's subscription was lost (frames may have been missed): the hub then sees
a lost connection, and the kiosk or console, closed by its edge, reconnects and resumes (0005).
"""
from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

from aiohttp import web

from central.cluster import envelope as e
from central.cluster.bus import Publisher, subscribe
from central.cluster.remote_link import RemoteLink
from central.live.admission import admit
from central.live.sockets import handle_frame

if TYPE_CHECKING:
    import redis.asyncio as aioredis

log = logging.getLogger(__name__)

# A relayed peer's frames not yet handled (the hub waits for the database for one of them, say). A socket of
# the leader's own is held back by TCP meanwhile; a relayed one is cut off past this, as a flood.
MAX_INBOUND_BYTES = 1024 * 1024
EDGE_CHECK_S = 1.0  # how often the leader asks whether the edges it serves peers of are still there
RESUBSCRIBE_S = 0.5
SERVICE_RESTART = 1012


class Session:
    """One relayed socket on the leader: its link and the frames it sent, in order."""

    def __init__(self, edge: str, peer: str, link: RemoteLink) -> None:
        self.edge, self.peer, self.link = edge, peer, link
        self._frames: deque[str | bytes | None] = deque()
        self._ready = asyncio.Event()
        self.queued_bytes = 0
        self.ended = False

    def put(self, frame: str | bytes) -> bool:
        """False when the peer sent more than MAX_INBOUND_BYTES the hub has not handled yet."""
        if self.queued_bytes + len(frame) > MAX_INBOUND_BYTES:
            return False
        self._frames.append(frame)
        self.queued_bytes += len(frame)
        self._ready.set()
        return True

    def end(self) -> None:
        if not self.ended:
            self.ended = True
            self._frames.append(None)
            self._ready.set()

    async def next(self) -> str | bytes | None:
        while not self._frames:
            self._ready.clear()
            await self._ready.wait()
        frame = self._frames.popleft()
        if frame is not None:
            self.queued_bytes -= len(frame)
        return frame


class RemotePeers:
    """Started when this central takes over (:meth:`start`, with its epoch), runs while it leads;
    ``leading()`` is asked before a frame is acted on."""

    def __init__(self, app: web.Application, client: aioredis.Redis, subscriber: aioredis.Redis,
                 leading: Callable[[], bool]) -> None:
        self._app, self._client, self._subscriber = app, client, subscriber
        self.epoch, self._leading = -1, leading
        self.publisher = Publisher(client, on_unheard=self._unheard, on_failed=self._publish_failed)
        self.sessions: dict[tuple[str, str], Session] = {}
        self._tasks: set[asyncio.Task] = set()
        self._running: asyncio.Task | None = None
        self.stale = 0  # envelopes of another term, not acted on
        self.subscribed = asyncio.Event()

    def start(self, epoch: int) -> None:
        self.epoch = epoch
        self._running = asyncio.get_running_loop().create_task(self.run())

    def stop(self) -> None:
        if self._running is not None:
            self._running.cancel()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        background = [loop.create_task(self.publisher.run()), loop.create_task(self._watch_edges())]
        try:
            while True:
                try:
                    await subscribe(self._subscriber, e.UP, self._deliver, self.subscribed.set)
                except (asyncio.CancelledError, GeneratorExit):
                    raise
                except Exception as exc:  # Valkey away: frames may have been missed
                    self.subscribed.clear()
                    self._end_all(f"the subscription to relayed sockets was lost ({exc})")
                await asyncio.sleep(RESUBSCRIBE_S)
        finally:
            for task in [*background, *self._tasks]:
                task.cancel()

    # == envelopes from the edges ================================================
    def _deliver(self, data: bytes) -> None:
        env = e.unpack(data)
        if env is None or env.op not in e.UP_OPS:
            log.warning("ignored a message on %s that is no relay envelope", e.UP)
            return
        if env.epoch != self.epoch:
            self.stale += 1
            log.info("ignored a relayed %s of epoch %d (this central leads in epoch %d)", env.op, env.epoch,
                     self.epoch)
            return
        key = (env.edge, env.peer)
        session = self.sessions.get(key)
        if env.op == e.OPEN:
            if session is None:
                self._open(env)
        elif session is None:
            if env.op in (e.TEXT, e.BINARY):  # the leader ended it (edge thought gone, say): the edge closes it
                self.publisher.publish(e.down(env.edge), e.pack(self.epoch, env.edge, env.peer, e.CLOSE,
                                                                str(SERVICE_RESTART)), force=True)
        elif env.op == e.TEXT or env.op == e.BINARY:
            frame = env.payload.decode("utf-8", "surrogatepass") if env.op == e.TEXT else env.payload
            if not session.put(frame):
                log.warning("a relayed peer sent more than %d bytes central has not handled yet; dropping it",
                            MAX_INBOUND_BYTES)
                session.link.abort()
        elif env.op == e.PONG:
            session.link.heard_pong()
        elif env.op == e.CLOSED:
            session.link.ended()
            session.end()

    def _open(self, env: e.Envelope) -> None:
        try:
            opening = json.loads(env.payload)
            kind, identity = opening["kind"], opening["identity"]
        except (ValueError, KeyError, TypeError):
            log.warning("ignored a relayed open that does not say who connects")
            return
        key = (env.edge, env.peer)
        link = RemoteLink(self.publisher, self.epoch, env.edge, env.peer, on_gone=lambda: session.end())
        session = self.sessions[key] = Session(env.edge, env.peer, link)
        task = asyncio.get_running_loop().create_task(self._serve(session, kind, identity))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _serve(self, session: Session, kind: str, identity: dict) -> None:
        """A relayed socket's life on the leader, as central.live.sockets._serve is a local one's."""
        down = e.down(session.edge)
        try:
            try:
                admitted = await admit(self._app, kind, identity)
            except web.HTTPException as refusal:
                self._answer(session, e.REFUSED, json.dumps({"status": refusal.status, "text": refusal.text,
                                                             "headers": dict(refusal.headers)}))
                return
            except Exception:
                log.exception("admitting a relayed %s failed", kind)
                self._answer(session, e.REFUSED, json.dumps({"status": 500, "text": "central failed; try again\n",
                                                             "headers": {}}))
                return
            if session.ended:  # the edge gave up waiting, or the peer left meanwhile
                return
            self.publisher.publish(down, e.pack(self.epoch, session.edge, session.peer, e.ADMITTED), force=True)
            link = session.link
            peer = admitted.make_peer(link)
            admitted.on_open(peer)
            try:
                while (data := await session.next()) is not None:
                    if link.closed:
                        break
                    if not self._leading():
                        continue  # the term ended; stepping down closes everything in a moment
                    if (pending := handle_frame(admitted, peer, link, data)) is not None:
                        await pending
            finally:
                admitted.on_close(peer)
                link.ended()
        finally:
            if self.sessions.get((session.edge, session.peer)) is session:
                del self.sessions[(session.edge, session.peer)]

    def _answer(self, session: Session, op: str, payload: str) -> None:
        self.publisher.publish(e.down(session.edge), e.pack(self.epoch, session.edge, session.peer, op, payload),
                               force=True)

    # == edges that are gone =====================================================
    def _end_edge(self, edge: str, why: str) -> None:
        ended = [s for s in self.sessions.values() if s.edge == edge]
        for session in ended:
            session.link.ended()
            session.end()
        if ended:
            log.warning("ended the %d sockets relayed by edge %s: %s", len(ended), edge, why)

    def _end_all(self, why: str) -> None:
        for edge in {s.edge for s in self.sessions.values()}:
            # The edge may still hold the sockets: it closes them when it hears of an unknown peer.
            self._end_edge(edge, why)

    def _unheard(self, channel: str) -> None:
        prefix = e.down("")
        if channel.startswith(prefix):
            self._end_edge(channel[len(prefix):], "nobody listens on its channel (the edge stopped)")

    def _publish_failed(self, exc: Exception) -> None:
        self._end_all(f"frames for them could not be published ({exc})")

    async def _watch_edges(self) -> None:
        """An edge renews its presence key while it runs; one whose key ran out (a lost machine, whose
        subscription Valkey may not notice for minutes) is gone, and so are its sockets."""
        while True:
            await asyncio.sleep(EDGE_CHECK_S)
            edges = sorted({s.edge for s in self.sessions.values()})
            if not edges:
                continue
            pipe = self._client.pipeline(transaction=False)
            for edge in edges:
                pipe.exists(e.presence(edge))
            try:
                found = await pipe.execute()
            except Exception:  # Valkey away: the lease keeper ends the term if it stays away
                continue
            for edge, there in zip(edges, found, strict=True):
                if not there:
                    self._end_edge(edge, "its presence key ran out (the edge is gone)")
