"""An edge central: one that does not lead, yet serves WebSockets, relaying each to the leader's hub.

Every central accepts kiosks, consoles, guests and visitors from home, so the load balancer may spread
the sockets over all of them (docs/deploy.md). One that does not lead checks what needs only PostgreSQL
itself (token, session, Origin: central/live/sockets.py), then hands the socket to :class:`Edge`, which
asks the leader to admit it (central/live/admission.py, run there) and carries its frames to the leader
and the leader's frames back, as envelopes through Valkey (central/cluster/envelope.py). The edge never
touches a waiting room: the leader's hub stays the one place where a visit is picked up.

The edge follows the leader's term. Every POLL_S it reads the lease, asks whether the leader listens, and
renews its own presence key (how the leader knows the edge is alive). When the leader changes, stops
listening, or Valkey cannot be reached, it closes every relayed socket with 1012 (Service Restart): the
kiosks and consoles reconnect through the load balancer and resume as after a change of leader today
(0005), and the edge takes new sockets only once it sees a leader that listens again. An envelope of
another term is not acted on.
"""
from __future__ import annotations

import asyncio
import json
import logging
import secrets
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aiohttp import WSMsgType, web

from central.cluster import envelope as e
from central.cluster.bus import Publisher, subscribe
from central.live.link import Link
from central.live.sockets import open_socket, socket_link
from protocol.codec import MAX_FRAME_BYTES, decode, error_frame
from protocol.errors import ProtocolError

if TYPE_CHECKING:
    import redis.asyncio as aioredis

    from central.cluster.lease import Lease

log = logging.getLogger(__name__)

POLL_S = 0.5  # how soon the edge notices a change of leader (a killed leader is noticed sooner: see _unheard)
POLL_FAILURES_TO_CLOSE = 3  # polls in a row without an answer (about 1.5 s plus their timeouts) end the sockets
PRESENCE_TTL_MS = 3000  # the leader ends this edge's sockets once its presence key is this much overdue
ADMIT_TIMEOUT_S = 5.0  # the leader answers an open at once; a kiosk's alive probe takes up to 1 s
MAX_EARLY_FRAMES = 64  # frames for a socket that arrive in the moment between "admitted" and its handshake
SERVICE_RESTART = 1012
TRY_AGAIN_LATER = 1013
RETRY_AFTER_S = "5"


@dataclass(eq=False)
class Relayed:
    """One socket this edge relays, in the leader's term ``epoch``."""

    epoch: int
    answer: asyncio.Future
    ws: web.WebSocketResponse | None = None
    link: Link | None = None
    early: list[str] | None = field(default_factory=list)


class Edge:
    def __init__(self, client: aioredis.Redis, subscriber: aioredis.Redis, lease: Lease) -> None:
        self._client, self._subscriber, self._lease = client, subscriber, lease
        self.name = lease.name  # as in the lease's value: unique per process
        self.channel = e.down(self.name)
        self.publisher = Publisher(client, on_unheard=self._unheard, on_failed=self._failed)
        self.epoch: int | None = None  # the leader's term this edge relays to
        self.ready = False  # it knows a leader that listens, and hears its own channel
        self._subscribed = False
        self._reachable = True
        self._poll_failures = 0
        self.relayed: dict[str, Relayed] = {}
        self.stale = 0  # envelopes of another term, not acted on
        self._tasks: set[asyncio.Task] = set()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        tasks = [loop.create_task(self.publisher.run()), loop.create_task(self._listen())]
        try:
            while True:
                await self._follow_the_leader()
                await asyncio.sleep(POLL_S)
        finally:
            for task in tasks:
                task.cancel()
            self.ready = False
            self.close_all("this central leads now, or stops")

    # == the leader's term ======================================================
    async def _follow_the_leader(self) -> None:
        pipe = self._client.pipeline(transaction=False)
        pipe.get(self._lease.key)
        pipe.pubsub_numsub(e.UP)
        pipe.set(e.presence(self.name), b"1", px=PRESENCE_TTL_MS)
        try:
            value, listeners, _ = await pipe.execute()
        except Exception as exc:  # redis ConnectionError, TimeoutError
            # One slow answer on a busy machine loses no frame (the subscription and the publisher say when one
            # is lost, and then everything closes at once): only a Valkey that stays away ends the sockets.
            self._poll_failures += 1
            if self._poll_failures < POLL_FAILURES_TO_CLOSE and self._subscribed:
                log.warning("edge: Valkey/Redis did not answer (%s); asking again", exc)
                return
            self.ready = False
            if self._reachable or self.relayed:
                self.close_all(f"Valkey/Redis cannot be reached ({exc})", error=True)
            self._reachable = False
            return
        self._poll_failures = 0
        if not self._reachable:
            log.info("edge: Valkey/Redis can be reached again")
        self._reachable = True
        value = value.decode() if isinstance(value, bytes) else value
        if value is None or self._lease.value is not None:
            self.ready = False  # nobody leads, or this central does (it took over): nothing to relay to
            self.epoch = None
            self.close_all("no other central leads now" if value is None else "this central leads now")
            return
        epoch = int(value.split(":", 1)[0])
        if epoch != self.epoch:
            if self.epoch is not None:
                self.close_all(f"the leader changed (epoch {self.epoch} -> {epoch})")
            self.epoch = epoch
        heard = bool(listeners and listeners[0][1])
        if not heard:
            self.close_all("the leader does not listen (it stopped, or lost Valkey)")
        self.ready = heard and self._subscribed

    async def _listen(self) -> None:
        while True:
            try:
                await subscribe(self._subscriber, self.channel, self._deliver, self._now_subscribed)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the subscription's connection was lost: frames may be lost
                self._subscribed = self.ready = False
                self.close_all(f"its subscription to Valkey/Redis was lost ({exc})", error=True)
            await asyncio.sleep(POLL_S)

    def _now_subscribed(self) -> None:
        self._subscribed = True

    def _unheard(self, channel: str) -> None:
        self.ready = False
        self.close_all("the leader does not listen any more (it stopped, or lost Valkey)")

    def _failed(self, exc: Exception) -> None:
        self.ready = False
        self.close_all(f"frames could not be published to Valkey/Redis ({exc})", error=True)

    def close_all(self, why: str, *, error: bool = False) -> None:
        """Close every relayed socket with 1012: its kiosk or console reconnects and resumes (0005)."""
        if not self.relayed:
            return
        closed = 0
        for relayed in self.relayed.values():
            if relayed.ws is not None:
                self._beside(relayed.ws.close(code=SERVICE_RESTART, message=b"central changed leader; reconnect "
                                               b"through the load balancer"))
                closed += 1
            elif not relayed.answer.done():
                relayed.answer.set_result(None)
        self.relayed.clear()
        self.publisher.drop()
        (log.error if error else log.warning)(
            "edge: closed %d relayed WebSockets (1012 Service Restart): %s; they reconnect through the load "
            "balancer", closed, why)

    # == envelopes from the leader ===============================================
    def _deliver(self, data: bytes) -> None:
        env = e.unpack(data)
        if env is None or env.op not in e.DOWN_OPS:
            log.warning("edge: ignored a message on %s that is no relay envelope", self.channel)
            return
        if env.epoch != self.epoch or env.edge != self.name:
            self.stale += 1
            log.info("edge: ignored a %s of epoch %d (relaying in epoch %s)", env.op, env.epoch, self.epoch)
            return
        relayed = self.relayed.get(env.peer)
        if relayed is None:
            return  # its socket ended meanwhile; the leader hears "closed"
        if env.op == e.SEND:
            frame = env.payload.decode("utf-8", "surrogatepass")
            if relayed.link is not None:
                relayed.link.send(frame)
            elif relayed.early is not None:
                if len(relayed.early) >= MAX_EARLY_FRAMES:  # cannot happen with central's own frames
                    self._forget(env.peer, relayed)  # the socket opens and is closed at once (1012)
                else:
                    relayed.early.append(frame)
        elif env.op in (e.ADMITTED, e.REFUSED) or relayed.link is None:
            if not relayed.answer.done():
                relayed.answer.set_result(env)
        elif env.op == e.CLOSE:
            code = int(env.payload or b"1000")
            if code == 1000:
                relayed.link.close()
            else:
                self._beside(relayed.ws.close(code=code, message=b"reconnect through the load balancer"))
        elif env.op == e.ABORT:
            relayed.link.abort()
        elif env.op == e.PING:
            self._beside(self._probe(env.peer, relayed, float(env.payload or b"1")))

    def _beside(self, coro) -> None:  # noqa: ANN001 - a coroutine
        """Run a close (or a ping) beside the socket's own task, holding on to it until it is done."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _probe(self, peer: str, relayed: Relayed, within_s: float) -> None:
        if await relayed.link.answers_ping(within_s) and self.relayed.get(peer) is relayed:
            self.publisher.publish(e.UP, e.pack(relayed.epoch, self.name, peer, e.PONG), force=True)

    # == one relayed socket =====================================================
    async def relay(self, request: web.Request, kind: str, identity: dict) -> web.StreamResponse:
        """Serve an authenticated peer through the leader: the handshake is answered as the leader admits or
        refuses it, then frames go both ways until either side closes."""
        if not self.ready or self.epoch is None or self._lease.value is not None:
            return await refuse(request)
        peer, epoch = secrets.token_hex(8), self.epoch
        relayed = self.relayed[peer] = Relayed(epoch, asyncio.get_running_loop().create_future())
        try:
            return await self._serve(request, peer, relayed, kind, identity)
        finally:  # also when the handshake is given up half-way: the leader's session for it ends too
            self._forget(peer, relayed)

    async def _serve(self, request: web.Request, peer: str, relayed: Relayed, kind: str,
                     identity: dict) -> web.StreamResponse:
        self.publisher.publish(e.UP, e.pack(relayed.epoch, self.name, peer, e.OPEN, json.dumps(
            {"kind": kind, "identity": identity})), force=True)
        try:
            answer = await asyncio.wait_for(asyncio.shield(relayed.answer), ADMIT_TIMEOUT_S)
        except TimeoutError:
            answer = None
        if answer is None or answer.op != e.ADMITTED:
            if answer is not None and answer.op == e.REFUSED:
                refusal = json.loads(answer.payload)
                return web.Response(status=refusal["status"], text=refusal["text"], headers={
                    k: v for k, v in refusal["headers"].items() if k.lower() == "retry-after"})
            return web.Response(status=503, headers={"Retry-After": RETRY_AFTER_S},
                                text="no leading central answered in time; try again in a few seconds\n")
        ws = open_socket(request)
        await ws.prepare(request)
        sockets = request.app["websockets"]
        sockets.add(ws)
        link = relayed.link = socket_link(ws, request)
        relayed.ws = ws
        for frame in relayed.early or ():
            link.send(frame)
        relayed.early = None
        try:
            if self.relayed.get(peer) is not relayed:  # all were closed while this one's handshake was answered
                await ws.close(code=SERVICE_RESTART, message=b"central changed leader; reconnect through the load "
                                                             b"balancer")
            async for frame in ws:
                if link.closed:
                    break
                if frame.type is WSMsgType.PING:
                    await ws.pong(frame.data)
                elif frame.type is WSMsgType.PONG:
                    link.heard_pong()
                elif frame.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                    break
                elif self.relayed.get(peer) is relayed:
                    self._up(peer, relayed, frame.data)
        finally:
            sockets.discard(ws)
            self._forget(peer, relayed)
            await link.wait_closed()
        return ws

    def _up(self, peer: str, relayed: Relayed, data: str | bytes) -> None:
        payload = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
        if len(payload) > MAX_FRAME_BYTES:  # refused here, as the leader would: the same typed error
            try:
                decode(data, {})
            except ProtocolError as err:
                relayed.link.send(error_frame(err))
            return
        op = e.TEXT if isinstance(data, str) else e.BINARY
        if not self.publisher.publish(e.UP, e.pack(relayed.epoch, self.name, peer, op, payload)):
            log.warning("edge: Valkey/Redis takes frames slower than peers send them; dropping one connection")
            relayed.link.abort()

    def _forget(self, peer: str, relayed: Relayed) -> None:
        """The socket ended (or never opened): the leader's session for it ends too."""
        if self.relayed.get(peer) is relayed:
            del self.relayed[peer]
            self.publisher.publish(e.UP, e.pack(relayed.epoch, self.name, peer, e.CLOSED), force=True)

    async def stop(self) -> None:
        """A clean stop: the leader learns at once that this edge's sockets are gone."""
        try:
            await asyncio.wait_for(self._client.delete(e.presence(self.name)), 1.0)
        except Exception:  # Valkey away: the key runs out on its own
            log.debug("could not delete the edge's presence key", exc_info=True)


async def refuse(request: web.Request) -> web.WebSocketResponse:
    """Neither leader nor a ready edge: the client retries through the load balancer (1013 Try Again Later)."""
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    await ws.close(code=TRY_AGAIN_LATER, message=b"standby central; reconnect through the load balancer")
    return ws
