"""The loopback HTTP server RAUC streams the bundle from, fetching it from central as RAUC reads.

RAUC streams a bundle (it never stores it whole): it asks ``HEAD`` for the size, then reads blocks
with ``Range`` requests, and re-reads what it needs again later. It cannot send the kiosk's token
or use the city's CA, and a cut connection fails its install, so it reads from here instead:
``http://127.0.0.1:<random port>/<name>.raucb``. Each of its requests becomes one request to
central over HTTPS (``Authorization: Bearer``, the same TLS rules as the kiosk's link: call/tls.py)
for the same range; a connection cut in the middle is taken up again from the last byte received,
a few times with growing pauses; ``If-Range`` with central's ETag makes sure the pieces come from
one and the same file. All requests share a token bucket (the offer's ``max_kbit_s``) and a byte
counter (the status's ``downloaded_bytes``).

A bundle is signed, not secret, so serving it to other local processes gives nothing away.
"""
from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import aiohttp
from aiohttp import web

from appliance.call.tls import Trust
from appliance.config import check_central_url
from protocol.errors import AmtsklingelError

log = logging.getLogger(__name__)

READ_CHUNK = 16 * 1024
RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
CONTENT_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+)$")
RETRYABLE = (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, TimeoutError, ConnectionError)


class FetchFailed(AmtsklingelError, OSError):
    """Central did not hand over the bundle (refused, missing, changed, or unreachable for too long)."""


class ReaderGone(AmtsklingelError, EOFError):  # noqa: N818 - a signal inside this module, no error anyone sees
    """RAUC closed its request before the range was sent (it had what it needed, or it gave up)."""


@dataclass(frozen=True)
class Retry:
    attempts: int = 8        # in a row without a byte received; a retry that gets bytes starts the count again
    first_s: float = 1.0
    max_s: float = 30.0

    def delay(self, attempt: int) -> float:
        return min(self.max_s, self.first_s * 2 ** attempt)


class TokenBucket:
    """At most ``rate`` bytes a second on average, in bursts of at most ``burst`` bytes."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self.rate, self.burst, self.clock, self.sleep = rate, burst, clock, sleep
        self._tokens, self._at = float(burst), clock()
        self._lock = asyncio.Lock()  # RAUC's parallel requests queue up for the same line

    async def take(self, n: int) -> None:
        async with self._lock:
            while True:
                now = self.clock()
                self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
                self._at = now
                if self._tokens >= min(n, self.burst):
                    self._tokens -= n  # may go below zero for a chunk larger than the burst: repaid by waiting
                    return
                # at least a millisecond: a wait of nanoseconds may not move the clock at all
                await self.sleep(max(0.001, (min(n, self.burst) - self._tokens) / self.rate))


def bucket_for(max_kbit_s: int | None) -> TokenBucket | None:
    if max_kbit_s is None:
        return None
    rate = max_kbit_s * 1000 / 8
    return TokenBucket(rate, burst=max(READ_CHUNK, int(rate / 4)))


class BundleProxy:
    """Serves one bundle of ``size`` bytes from ``source_url`` (central) on 127.0.0.1."""

    def __init__(self, source_url: str, *, token: str | None, size: int, trust: Trust | None = None,
                 max_kbit_s: int | None = None, retry: Retry = Retry()) -> None:
        self.source_url, self.token, self.size, self.retry = source_url, token, size, retry
        self.trust = trust or Trust()
        check_central_url(source_url)  # https, or plain http only to this machine or a .test name
        self.name = source_url.rsplit("/", 1)[-1]
        self.bucket = bucket_for(max_kbit_s)
        self.downloaded_bytes = 0
        self.resumes = 0                  # how often a cut connection to central was taken up again
        self.problem: str | None = None   # why central's bundle could not be used: the agent reports it
        self.etag: str | None = None
        self._checked = asyncio.Lock()
        self._runner: web.AppRunner | None = None
        self._http: aiohttp.ClientSession | None = None
        self.url = ""

    async def start(self) -> str:
        app = web.Application()
        app.router.add_route("HEAD", "/{name}", self._head)
        app.router.add_route("GET", "/{name}", self._get)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=15, sock_read=30)
        self._http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=self.trust.context()), timeout=timeout)
        self.url = f"http://127.0.0.1:{port}/{self.name}"
        return self.url

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._http is not None:
            await self._http.close()

    # -- RAUC's side -------------------------------------------------------------------------------
    async def _head(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["name"] != self.name:
            raise web.HTTPNotFound()
        await self._check()
        return web.Response(headers={"Content-Length": str(self.size), "Accept-Ranges": "bytes",
                                     "Content-Type": "application/octet-stream"})

    async def _get(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["name"] != self.name:
            raise web.HTTPNotFound()
        await self._check()
        first, last = self._range(request.headers.get("Range"))
        partial = "Range" in request.headers
        response = web.StreamResponse(status=206 if partial else 200, headers={
            "Content-Length": str(last - first + 1), "Accept-Ranges": "bytes",
            "Content-Type": "application/octet-stream"})
        if partial:
            response.headers["Content-Range"] = f"bytes {first}-{last}/{self.size}"
        await response.prepare(request)
        try:
            await self._copy(first, last, response)
        except ReaderGone:
            return response
        except FetchFailed:
            request.transport.close()  # RAUC must not take a short answer for the whole range
            raise
        await response.write_eof()
        return response

    def _range(self, header: str | None) -> tuple[int, int]:
        if header is None:
            return 0, self.size - 1
        found = RANGE.match(header.strip())
        if not found or found.group(1) == found.group(2) == "":
            raise web.HTTPRequestRangeNotSatisfiable(headers={"Content-Range": f"bytes */{self.size}"})
        if found.group(1) == "":  # the last n bytes
            first, last = max(0, self.size - int(found.group(2))), self.size - 1
        else:
            first = int(found.group(1))
            last = min(self.size - 1, int(found.group(2))) if found.group(2) else self.size - 1
        if first > last or first >= self.size:
            raise web.HTTPRequestRangeNotSatisfiable(headers={"Content-Range": f"bytes */{self.size}"})
        return first, last

    # -- central's side ----------------------------------------------------------------------------
    def _headers(self, first: int, last: int) -> dict[str, str]:
        headers = {"Range": f"bytes={first}-{last}"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        if self.etag:
            headers["If-Range"] = self.etag
        return headers

    async def _check(self) -> None:
        """Once: central has the bundle, lets this kiosk have it, and its length is the offer's."""
        async with self._checked:
            if self.problem is not None:
                raise web.HTTPBadGateway(text=self.problem)
            if self.etag is not None:
                return
            for attempt in range(self.retry.attempts):
                try:
                    headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
                    async with self._http.head(self.source_url, headers=headers) as r:
                        self._refuse_status(r.status)
                        if r.status >= 500:
                            raise aiohttp.ClientConnectionError(f"central answered {r.status}")
                        length = r.headers.get("Content-Length")
                        if length is None or int(length) != self.size:
                            self._fail(f"central's bundle is {length} bytes, the offer said {self.size}; "
                                       "the offer and the file on central do not match")
                        self.etag = r.headers.get("ETag") or ""
                        return
                except FetchFailed as exc:
                    raise web.HTTPBadGateway(text=str(exc)) from None
                except RETRYABLE as exc:
                    await self._pause(attempt, exc)
            self._fail_quietly(f"central could not be reached after {self.retry.attempts} attempts")
            raise web.HTTPBadGateway(text=self.problem)

    async def _copy(self, first: int, last: int, response: web.StreamResponse) -> None:
        position, attempt = first, 0
        while position <= last:
            got = 0
            try:
                async with self._http.get(self.source_url, headers=self._headers(position, last)) as r:
                    self._refuse_status(r.status)
                    if r.status == 200 and self.etag:
                        self._fail("the bundle on central changed during the download (its ETag differs); "
                                   "central offers it again")
                    if r.status >= 500:
                        raise aiohttp.ClientConnectionError(f"central answered {r.status}")
                    self._check_range(r, position, last)
                    async for chunk in r.content.iter_chunked(READ_CHUNK):
                        chunk = chunk[:last - position + 1]
                        if self.bucket is not None:
                            await self.bucket.take(len(chunk))
                        try:
                            await response.write(chunk)
                        except ConnectionError:
                            raise ReaderGone() from None  # RAUC hung up: nothing to resume for it
                        position += len(chunk)
                        got += len(chunk)
                        self.downloaded_bytes += len(chunk)
                if position <= last:
                    raise aiohttp.ClientPayloadError(f"central's answer ended {last - position + 1} bytes early")
            except RETRYABLE as exc:
                if got:
                    attempt = 0  # it moves on: only a line that gives nothing at all gives up
                if attempt >= self.retry.attempts:
                    self._fail(f"central could not be reached after {self.retry.attempts} attempts ({exc})")
                await self._pause(attempt, exc)
                attempt += 1
                self.resumes += 1

    def _check_range(self, r: aiohttp.ClientResponse, position: int, last: int) -> None:
        if r.status != 206:
            if r.status == 200 and position == 0 and last == self.size - 1:
                return  # a whole file for a whole file
            self._fail(f"central answered {r.status} to a range request; it must support Range (206)")
        found = CONTENT_RANGE.match(r.headers.get("Content-Range", ""))
        if not found or int(found.group(1)) != position or int(found.group(3)) != self.size:
            self._fail(f"central sent the range {r.headers.get('Content-Range')!r} for bytes {position}-{last} "
                       f"of {self.size}: not the file the offer describes")

    def _refuse_status(self, status: int) -> None:
        if status in (401, 403):
            self._fail(f"central refused this kiosk's token for the bundle ({status}); is the kiosk revoked?")
        if status == 404:
            self._fail("central does not have this bundle (404); it may have been removed")
        if status == 416:
            self._fail("central's bundle is shorter than the offer said (416)")
        if 400 <= status < 500:
            self._fail(f"central refused the download ({status})")

    async def _pause(self, attempt: int, exc: BaseException) -> None:
        delay = self.retry.delay(attempt)
        log.warning("bundle download from central interrupted (%s); resuming in %.1f s", exc or type(exc).__name__,
                    delay)
        await asyncio.sleep(delay)

    def _fail(self, problem: str) -> None:
        self._fail_quietly(problem)
        raise FetchFailed(problem)

    def _fail_quietly(self, problem: str) -> None:
        if self.problem is None:
            self.problem = problem
            log.error("bundle download: %s", problem)
