"""Keeps the kiosk connected to central and turns what happens into controller events.

Connection lost -> ``disconnected``; back -> ``connected`` (the controller then
resumes its visit). A refused token is a fault of the unit, retried slowly in
case IT re-enrols it.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import aiohttp

from appliance.call.signaling import CentralLink, CentralUnreachable, TokenRefused
from protocol import messages as m

log = logging.getLogger(__name__)

TOKEN_RETRY_S = 60.0


class CentralSession:
    def __init__(self, central_url: str, token: str, post: Callable[[str, Any], None]):
        self._url, self._token, self._post = central_url, token, post
        self._link: CentralLink | None = None
        self.connected = asyncio.Event()

    async def send(self, message: m.Message) -> None:
        """Send if connected; while offline the controller's resume covers what is lost."""
        if self._link is None or not self.connected.is_set():
            log.info("offline; %s not sent", message.type)
            return
        try:
            await self._link.send(message)
        except (CentralUnreachable, ConnectionError, RuntimeError):
            log.info("connection dropped while sending %s", message.type)

    async def run(self) -> None:
        async with aiohttp.ClientSession() as session:
            while True:
                self._link = CentralLink(self._url, self._token, session)
                try:
                    welcome = await self._link.connect_with_backoff()
                except TokenRefused:
                    self._post("fault", "token_refused")
                    await asyncio.sleep(TOKEN_RETRY_S)
                    continue
                self.connected.set()
                self._post("connected", welcome)
                async for message in self._link.messages():
                    self._post("central", message)
                self.connected.clear()
                self._post("disconnected", None)
                await self._link.close()

    async def close(self) -> None:
        if self._link:
            await self._link.close()
