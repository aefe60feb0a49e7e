"""The kiosk's WebSocket to central: authenticated, validated, reconnecting.

Messages are checked with the same protocol definitions central uses, so a
broken or hostile central cannot make the kiosk act on malformed data.
"""
from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator

import aiohttp

from appliance.call.backoff import Backoff
from appliance.call.tls import Trust
from protocol import messages as m
from protocol.codec import decode, encode
from protocol.errors import AmtsklingelError, ProtocolError

log = logging.getLogger(__name__)

# Handshake and welcome together; a central that accepts TCP but never answers is unreachable.
CONNECT_TIMEOUT_S = 20.0
CLOSE_TIMEOUT_S = 2.0  # a polite close that cannot get its frame out is cut instead


class CentralUnreachable(AmtsklingelError, ConnectionError):
    """Central did not accept the connection (network down, or token refused)."""


class CertificateRejected(CentralUnreachable):
    """Central's certificate is not one this unit trusts (wrong CA, wrong name, expired, or a wrong clock)."""


class TokenRefused(CentralUnreachable):
    """Central answered 401: this kiosk's token is unknown or revoked. Retrying will not help."""


class CentralLink:
    """One connection to ``/ws/kiosk``; ``connect()`` again after it drops."""

    def __init__(self, central_url: str, token: str, session: aiohttp.ClientSession, trust: Trust | None = None):
        self.url = central_url.rstrip("/").replace("http", "ws", 1) + "/ws/kiosk"
        self._token = token
        self._session = session  # made by trust.http_session(): it checks central's certificate
        self._trust = trust or Trust()
        self._ws: aiohttp.ClientWebSocketResponse | None = None

    async def connect(self, timeout_s: float = CONNECT_TIMEOUT_S) -> m.Welcome:
        try:
            async with asyncio.timeout(timeout_s):
                return await self._connect()
        except TimeoutError:
            self.abort()
            raise CentralUnreachable(f"central at {self.url} did not greet within {timeout_s:.0f} s") from None

    async def _connect(self) -> m.Welcome:
        try:
            self._ws = await self._session.ws_connect(self.url, headers={"Authorization": f"Bearer {self._token}"},
                                                      heartbeat=20, timeout=aiohttp.ClientWSTimeout(ws_close=5))
        except aiohttp.WSServerHandshakeError as exc:
            if exc.status == 401:
                raise TokenRefused("central refused this kiosk's token; enrol the kiosk again") from None
            raise CentralUnreachable(f"central refused the connection ({exc.status})") from None
        except aiohttp.ClientSSLError as exc:
            raise CertificateRejected(self._trust.explain(self.url, exc)) from None
        except (aiohttp.ClientError, OSError) as exc:
            raise CentralUnreachable(f"cannot reach central at {self.url}: {exc}") from None
        try:
            welcome = await self.receive()
        except CentralUnreachable:
            await self.close()
            raise
        if not isinstance(welcome, m.Welcome):
            await self.close()
            raise CentralUnreachable(f"central greeted with {welcome.type}, expected welcome")
        return welcome

    async def connect_with_backoff(self, attempts: int | None = None) -> m.Welcome:
        """Retry with jittered exponential backoff; gives up only on a refused token or after ``attempts``."""
        backoff, tries = Backoff(), 0
        while True:
            try:
                return await self.connect()
            except TokenRefused:
                raise
            except CentralUnreachable as exc:
                tries += 1
                if attempts is not None and tries >= attempts:
                    raise
                delay = backoff.next_delay()
                log.warning("%s; retrying in %.1f s", exc, delay)
                await asyncio.sleep(delay)

    async def send(self, message: m.Message) -> None:
        if self._ws is None or self._ws.closed:
            raise CentralUnreachable("not connected to central")
        await self._ws.send_str(encode(message))

    async def receive(self) -> m.Message:
        """The next valid message; malformed ones are logged and skipped."""
        assert self._ws is not None
        while True:
            frame = await self._ws.receive()
            if frame.type != aiohttp.WSMsgType.TEXT:
                raise CentralUnreachable("connection to central closed")
            try:
                return decode(frame.data, m.CENTRAL_TO_KIOSK)
            except ProtocolError as exc:
                log.error("ignoring malformed message from central: %s", exc)

    async def messages(self) -> AsyncIterator[m.Message]:
        while True:
            try:
                yield await self.receive()
            except CentralUnreachable:
                return

    def abort(self) -> None:
        """Cut the connection at once, whatever is still unsent (a stalled link is not closed politely).

        Shutting the socket down wakes the pending ``receive()``, so the session takes its
        reconnect path as after any other network fault.
        """
        sock = self._ws.get_extra_info("socket") if self._ws is not None else None
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already gone

    async def close(self) -> None:
        if self._ws is None:
            return
        try:
            async with asyncio.timeout(CLOSE_TIMEOUT_S):
                await self._ws.close()
        except TimeoutError:
            self.abort()
