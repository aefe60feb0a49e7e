"""The kiosk's WebSocket to central: authenticated, validated, reconnecting.

Messages are checked with the same protocol definitions central uses, so a
broken or hostile central cannot make the kiosk act on malformed data.
"""
from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator

import aiohttp

from protocol import messages as m
from protocol.codec import decode, encode
from protocol.errors import AmtsklingelError, ProtocolError

log = logging.getLogger(__name__)

BACKOFF_START_S, BACKOFF_MAX_S = 1.0, 30.0


class CentralUnreachable(AmtsklingelError, ConnectionError):
    """Central did not accept the connection (network down, or token refused)."""


class TokenRefused(CentralUnreachable):
    """Central answered 401: this kiosk's token is unknown or revoked. Retrying will not help."""


class CentralLink:
    """One connection to ``/ws/kiosk``; ``connect()`` again after it drops."""

    def __init__(self, central_url: str, token: str, session: aiohttp.ClientSession):
        self.url = central_url.rstrip("/").replace("http", "ws", 1) + "/ws/kiosk"
        self._token = token
        self._session = session
        self._ws: aiohttp.ClientWebSocketResponse | None = None

    async def connect(self) -> m.Welcome:
        try:
            self._ws = await self._session.ws_connect(self.url, headers={"Authorization": f"Bearer {self._token}"},
                                                      heartbeat=20, timeout=aiohttp.ClientWSTimeout(ws_close=5))
        except aiohttp.WSServerHandshakeError as exc:
            if exc.status == 401:
                raise TokenRefused("central refused this kiosk's token; enrol the kiosk again") from None
            raise CentralUnreachable(f"central refused the connection ({exc.status})") from None
        except (aiohttp.ClientError, OSError) as exc:
            raise CentralUnreachable(f"cannot reach central at {self.url}: {exc}") from None
        welcome = await self.receive()
        if not isinstance(welcome, m.Welcome):
            raise CentralUnreachable(f"central greeted with {welcome.type}, expected welcome")
        return welcome

    async def connect_with_backoff(self, attempts: int | None = None) -> m.Welcome:
        """Retry with jittered exponential backoff; gives up only on a refused token or after ``attempts``."""
        delay, tries = BACKOFF_START_S, 0
        while True:
            try:
                return await self.connect()
            except TokenRefused:
                raise
            except CentralUnreachable as exc:
                tries += 1
                if attempts is not None and tries >= attempts:
                    raise
                log.warning("%s; retrying in %.0f s", exc, delay)
                await asyncio.sleep(delay * random.uniform(0.8, 1.2))
                delay = min(delay * 2, BACKOFF_MAX_S)

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

    async def close(self) -> None:
        if self._ws is not None:
            await self._ws.close()
