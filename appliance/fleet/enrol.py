"""Enrolment by code: a unit without a token waits, on ``/ws/enrol``, for an admin to claim it.

The unit says who it is (``enrol.hello``: serial, model, version); central answers with a
short one-time code, which the kiosk page shows large, with a QR code of central's claim
page and the serial number. When an admin claims the code, central sends the unit its
token over the same connection (``enrol.done``): it is stored on the data partition and the
normal session to central starts in this same process, so the kiosk goes straight to the
idle screen. Nobody ever sees or types the token.

A lost connection means a new code after reconnecting (central forgets a code whose
connection closed), so the screen drops the old code at once instead of showing one
that no longer works.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import segno

from appliance.call.backoff import Backoff
from appliance.call.session import CentralSession
from appliance.call.signaling import CONNECT_TIMEOUT_S, CentralUnreachable, CertificateRejected
from appliance.call.tls import Trust
from appliance.controller.view import EnrolScreen
from appliance.hardware.interfaces import Unit
from appliance.service.files import write_atomic
from protocol import fleet
from protocol import messages as m
from protocol.codec import decode, encode
from protocol.errors import ProtocolError

log = logging.getLogger(__name__)


def qr_svg(url: str) -> str:
    """The QR code of ``url`` as an SVG data: URI (the page's CSP allows data: images, no scripts).

    Error correction M and a quiet zone of four modules, so a phone reads it off a screen at an angle.
    """
    code = segno.make(url, error="m", micro=False)
    return code.svg_data_uri(scale=8, border=4, dark="#000", light="#fff")


def store_token(path: Path, token: str) -> None:
    """Write the token so that a power cut leaves either no token or the whole token, readable by us only."""
    write_atomic(path, token + "\n")


RETRY_AFTER_MAX_S = 600  # however long central asks us to stay away, the unit tries again within 10 minutes


class CentralBusy(CentralUnreachable):
    """Central takes no more waiting units now (its cap): come back after ``retry_after_s``."""

    def __init__(self, message: str, retry_after_s: int):
        super().__init__(message)
        self.retry_after_s = retry_after_s


def _retry_after(headers) -> int | None:
    try:
        return min(RETRY_AFTER_MAX_S, max(0, int((headers or {}).get("Retry-After", ""))))
    except ValueError:
        return None


class EnrolLink:
    """One connection to ``/ws/enrol``, checked like every connection to central (appliance/call/tls.py)."""

    def __init__(self, central_url: str, http: aiohttp.ClientSession, trust: Trust):
        self.url = central_url.rstrip("/").replace("http", "ws", 1) + "/ws/enrol"
        self._http, self._trust = http, trust
        self._ws: aiohttp.ClientWebSocketResponse | None = None

    async def connect(self, timeout_s: float = CONNECT_TIMEOUT_S) -> None:
        try:
            async with asyncio.timeout(timeout_s):
                self._ws = await self._http.ws_connect(self.url, heartbeat=20,
                                                       timeout=aiohttp.ClientWSTimeout(ws_close=5))
        except TimeoutError:
            raise CentralUnreachable(f"central at {self.url} did not answer within {timeout_s:.0f} s") from None
        except aiohttp.WSServerHandshakeError as exc:
            wait = _retry_after(exc.headers)
            if exc.status in (429, 503) and wait is not None:
                raise CentralBusy(f"central has too many units waiting ({exc.status}); it asks to come back in "
                                  f"{wait} s", wait) from None
            raise CentralUnreachable(f"central refused the enrolment connection ({exc.status})") from None
        except aiohttp.ClientSSLError as exc:
            raise CertificateRejected(self._trust.explain(self.url, exc)) from None
        except (aiohttp.ClientError, OSError) as exc:
            raise CentralUnreachable(f"cannot reach central at {self.url}: {exc}") from None

    async def send(self, message: m.Message) -> None:
        try:
            await self._ws.send_str(encode(message))
        except (aiohttp.ClientError, ConnectionError, RuntimeError) as exc:
            raise CentralUnreachable(f"connection to central lost ({exc})") from None

    async def receive(self) -> m.Message:
        """The next valid message; malformed ones are logged and skipped."""
        while True:
            frame = await self._ws.receive()
            if frame.type != aiohttp.WSMsgType.TEXT:
                raise CentralUnreachable("central closed the enrolment connection")
            try:
                return decode(frame.data, m.CENTRAL_TO_ENROL)
            except ProtocolError as exc:
                log.error("ignoring malformed message from central: %s", exc)

    async def close(self) -> None:
        if self._ws is not None:
            await self._ws.close()


class Enrolment:
    """Waits to be claimed; ``run()`` returns the stored token."""

    def __init__(self, central_url: str, token_path: Path, unit: Unit, version: str,
                 show: Callable[[EnrolScreen], None], *, trust: Trust | None = None,
                 backoff: Backoff | None = None, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep):
        self.central_url, self.token_path = central_url, token_path
        self.hello = fleet.EnrolHello(type="enrol.hello", serial=unit.serial, model=unit.model[:120],
                                      version=version)
        self._show = show
        self._trust = trust or Trust()
        self.backoff = backoff or Backoff()
        self._sleep = sleep

    async def run(self) -> str:
        self._show(EnrolScreen(serial=self.hello.serial))
        loop = asyncio.get_running_loop()
        async with self._trust.http_session() as http:
            while True:
                link = EnrolLink(self.central_url, http, self._trust)
                opened, asked_s = loop.time(), 0
                try:
                    await link.connect()
                    await link.send(self.hello)
                    while True:
                        message = await link.receive()
                        if isinstance(message, fleet.EnrolCodeOffer):
                            log.info("showing an enrolment code (valid %d s)", message.expires_in_s)
                            self._show(EnrolScreen(serial=self.hello.serial, code=message.code,
                                                   claim_url=message.claim_url, qr=qr_svg(message.claim_url),
                                                   expires_in_s=message.expires_in_s))
                        elif isinstance(message, fleet.EnrolDone):
                            self._store(message.token)
                            log.info("enrolled by central; location %s", message.location)
                            return message.token
                        elif isinstance(message, m.Error):
                            log.warning("central refused the enrolment: %s", message.code)
                except CentralBusy as exc:
                    log.warning("%s", exc)
                    asked_s = exc.retry_after_s
                except CentralUnreachable as exc:
                    (log.error if isinstance(exc, CertificateRejected) else log.warning)("%s", exc)
                finally:
                    await link.close()
                # The code died with the connection: never leave it on the screen.
                self._show(EnrolScreen(serial=self.hello.serial, unreachable=True))
                self.backoff.connection_closed(loop.time() - opened)
                delay = max(self.backoff.next_delay(), asked_s)
                log.info("enrolment connection closed; reconnecting in %.1f s", delay)
                await self._sleep(delay)

    def _store(self, token: str) -> None:
        try:
            store_token(self.token_path, token)
        except OSError as exc:
            # The unit works until it restarts; then it shows a code again and IT re-enrols it.
            log.error("cannot store the kiosk token in %s (%s); the unit must be enrolled again after a restart. "
                      "Check the data partition", self.token_path, exc.strerror)


async def enrol_then_connect(enrolment: Enrolment | None, session: CentralSession,
                             post: Callable[[str, object], None]) -> None:
    """The service's link to central: enrolment first when there is no token yet, then the kiosk session.

    ``post`` is the controller's: ``enrol`` with an EnrolScreen shows the enrolment screen,
    ``enrol`` with None leaves it for the idle screen.
    """
    if enrolment is not None:
        session.use_token(await enrolment.run())
        post("enrol", None)
    await session.run()
