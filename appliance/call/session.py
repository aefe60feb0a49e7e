"""Keeps the kiosk connected to central and turns what happens into controller events.

Connection lost -> ``disconnected``; back -> ``connected`` (the controller then
resumes its visit). Every close is followed by a growing, jittered wait
(appliance/call/backoff.py). A refused token is a fault of the unit, retried
slowly in case IT re-enrols it; ``error replaced`` (a second unit with this
unit's token, e.g. a cloned SD card) stops the session for good: two units
taking turns would only knock each other off. Restarting the service retries.

Sending never waits on the network: messages go to the current connection's
outbox and a writer task puts them on the wire within ``send_timeout_s``. A link
that takes longer is broken (a stalled network, or a central that stopped
reading) and is cut, which leads to the ordinary reconnect and resume; so the
controller, and with it the watchdog, never hangs on central.

Each ``ping`` the session writes and the ``pong`` that answers it measure the
round trip to central (``rtt_ms``, for the health report).
"""
from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Callable
from typing import Any

import aiohttp

from appliance.call.backoff import Backoff
from appliance.call.signaling import CentralLink, CentralUnreachable, TokenRefused
from appliance.call.tls import Trust
from protocol import messages as m
from protocol.errors import ErrorCode

log = logging.getLogger(__name__)

TOKEN_RETRY_S = 60.0
SEND_TIMEOUT_S = 10.0
OUTBOX_LIMIT = 100  # messages; a controller sends a handful per change of screen


class CentralSession:
    def __init__(self, central_url: str, token: str | None, post: Callable[[str, Any], None], *,
                 send_timeout_s: float = SEND_TIMEOUT_S, backoff: Backoff | None = None, trust: Trust | None = None):
        self._url, self._token, self._post = central_url, token, post
        self._trust = trust or Trust()
        self.send_timeout_s = send_timeout_s
        self.backoff = backoff or Backoff()
        self._link: CentralLink | None = None
        self._outbox: asyncio.Queue[m.Message] | None = None
        self.connected = asyncio.Event()
        self.stopped_replaced = False
        self.rtt_ms: float | None = None  # the last ping -> pong on the current connection
        self._pings: collections.deque[float] = collections.deque(maxlen=OUTBOX_LIMIT)  # when each went out
        self.on_connected: list[Callable[[], None]] = []  # e.g. the health report, sent on every new connection

    @property
    def token(self) -> str | None:
        return self._token

    def use_token(self, token: str) -> None:
        """The token enrolment just received (appliance/fleet/enrol.py); before ``run()``."""
        self._token = token

    async def send(self, message: m.Message) -> None:
        """Queue for the current connection; while offline the controller's resume covers what is lost."""
        outbox, link = self._outbox, self._link
        if outbox is None or link is None:
            log.info("offline; %s not sent", message.type)
            return
        try:
            outbox.put_nowait(message)
        except asyncio.QueueFull:
            log.warning("central takes no messages; cutting the connection to reconnect")
            link.abort()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        async with self._trust.http_session() as http:
            while True:
                link = CentralLink(self._url, self._token, http, self._trust)
                try:
                    welcome = await link.connect()
                except TokenRefused:
                    self._post("fault", "token_refused")
                    await asyncio.sleep(TOKEN_RETRY_S)
                    continue
                except CentralUnreachable as exc:
                    delay = self.backoff.next_delay()
                    log.warning("%s; retrying in %.1f s", exc, delay)
                    await asyncio.sleep(delay)
                    continue
                opened = loop.time()
                replaced = await self._serve(link, welcome)
                if replaced:
                    log.error("another unit connected with this unit's token; not reconnecting. "
                              "Give each unit its own enrolment (Kiosks page in central), then restart the service")
                    self.stopped_replaced = True
                    self._post("fault", "replaced")
                    return
                self.backoff.connection_closed(loop.time() - opened)
                delay = self.backoff.next_delay()
                log.info("connection to central closed; reconnecting in %.1f s", delay)
                await asyncio.sleep(delay)

    async def _serve(self, link: CentralLink, welcome: m.Welcome) -> bool:
        """One connection from welcome to close; True when central said another unit replaced us."""
        outbox: asyncio.Queue[m.Message] = asyncio.Queue(OUTBOX_LIMIT)
        self._link, self._outbox = link, outbox
        self.rtt_ms = None
        self._pings.clear()
        self.connected.set()
        self._post("connected", welcome)
        for hook in self.on_connected:
            hook()
        writer = asyncio.get_running_loop().create_task(self._write(link, outbox), name="central-writer")
        replaced = False
        try:
            async for message in link.messages():
                if isinstance(message, m.Error) and message.code == ErrorCode.REPLACED.value:
                    replaced = True
                    break
                if isinstance(message, m.Pong) and self._pings:
                    # Central answers pings in order, so each pong belongs to the oldest ping.
                    self.rtt_ms = round((asyncio.get_running_loop().time() - self._pings.popleft()) * 1000, 1)
                self._post("central", message)
        finally:
            self._outbox = None
            self.connected.clear()
            writer.cancel()
            await asyncio.gather(writer, return_exceptions=True)
            await link.close()
            self._post("disconnected", None)
        return replaced

    async def _write(self, link: CentralLink, outbox: asyncio.Queue[m.Message]) -> None:
        while True:
            message = await outbox.get()
            if isinstance(message, m.Ping):
                self._pings.append(asyncio.get_running_loop().time())
            try:
                async with asyncio.timeout(self.send_timeout_s):
                    await link.send(message)
            except TimeoutError:
                log.warning("central did not take %s within %g s; reconnecting", message.type,
                            self.send_timeout_s)
                link.abort()
                return
            except (CentralUnreachable, aiohttp.ClientError, ConnectionError, RuntimeError):
                log.info("connection dropped while sending %s", message.type)
                link.abort()
                return

    async def close(self) -> None:
        if self._link:
            await self._link.close()
