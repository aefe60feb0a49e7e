"""``GET|HEAD /updates/bundles/{id}/{name}.raucb``: a kiosk fetches a bundle, resumably.

Only kiosks (their token as ``Authorization: Bearer``; a revoked token gets 401). One byte range at a
time (``Range: bytes=a-b``, ``a-``, ``-n``) answered with 206, a range past the end with 416; with
``If-Range`` the range counts only while the file is still the one that ETag names (the file's
sha256), otherwise the whole file comes (200), so a resumed download never mixes two bundles.
The body goes out with sendfile from the file on disk (a chunk at a time where central itself speaks
TLS), never read whole into memory.

(aiohttp's FileResponse was not used: it compares If-Range only as a date and ignores an ETag
there, so it would answer a stale resume with a range of another file.)
"""
from __future__ import annotations

import asyncio
import logging
import os
import re

from aiohttp import web

log = logging.getLogger(__name__)

ROUTE = "/updates/bundles/{bundle_id:[0-9]{1,10}}/{name:[A-Za-z0-9._+~-]{1,100}}.raucb"
RANGE_RE = re.compile(r"^bytes=(\d*)-(\d*)$")


async def _kiosk(request: web.Request):
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    kiosk = await request.app["db"].kiosk_by_token(token.strip()) if scheme.lower() == "bearer" and token else None
    if kiosk is None:
        raise web.HTTPUnauthorized(headers={"WWW-Authenticate": 'Bearer realm="amtsklingel"'},
                                   text="Bundles are for enrolled kiosks: send the kiosk's token as "
                                        "Authorization: Bearer.\n")
    return kiosk


def byte_range(header: str | None, size: int) -> tuple[int, int] | None | bool:
    """The range ``(first, last)`` asked for; None for the whole file (no or unusable header: RFC 9110
    says to ignore it, as for several ranges); False if it lies wholly past the end (416)."""
    if header is None:
        return None
    found = RANGE_RE.match(header.replace(" ", ""))
    if found is None:
        return None
    first, last = found.groups()
    if not first and not last:
        return None
    if not first:  # the last n bytes
        n = int(last)
        return (max(0, size - n), size - 1) if n > 0 and size > 0 else False
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if last and int(last) < start:
        return None  # invalid: ignored
    return (start, end) if start < size else False


async def download(request: web.Request) -> web.StreamResponse:
    await _kiosk(request)
    info = await request.app["bundles"].get(int(request.match_info["bundle_id"]))
    if info is None or request.match_info["name"] != info.name:
        raise web.HTTPNotFound(text="There is no such bundle (it may have been removed); ask central for the "
                                    "current offer.\n")
    try:
        f = await asyncio.to_thread(open, info.file, "rb")
    except FileNotFoundError:
        log.error("bundle %d is listed but its file is missing", info.id)
        raise web.HTTPNotFound(text="The bundle's file is missing on central.\n") from None
    try:
        size = os.fstat(f.fileno()).st_size
        etag = f'"{info.sha256}"'
        headers = {"Accept-Ranges": "bytes", "ETag": etag, "Cache-Control": "private, no-transform",
                   "Content-Type": "application/octet-stream"}
        wanted = byte_range(request.headers.get("Range"), size)
        if_range = request.headers.get("If-Range")
        if wanted is not None and if_range is not None and if_range.strip() != etag:
            wanted = None  # another file than the one the client has a part of: all of this one
        if wanted is False:
            headers["Content-Range"] = f"bytes */{size}"
            return web.Response(status=416, headers=headers)
        first, last = wanted if wanted else (0, size - 1)
        response = web.StreamResponse(status=206 if wanted else 200, headers=headers)
        if wanted:
            response.headers["Content-Range"] = f"bytes {first}-{last}/{size}"
        response.content_length = last - first + 1
        await response.prepare(request)
        if request.method != "HEAD" and last >= first:
            await _send(request, f, first, last - first + 1)
        await response.write_eof()
        return response
    finally:
        f.close()


async def _send(request: web.Request, f, offset: int, count: int) -> None:  # noqa: ANN001 - a binary file
    """The bytes with sendfile: the kernel copies from the page cache to the socket. Where it cannot (TLS
    in central itself), asyncio reads the file a chunk at a time in a thread and writes each to the socket."""
    transport = request.transport
    if transport is None:
        return  # the client went away
    await asyncio.get_running_loop().sendfile(transport, f, offset, count)


def routes() -> list[web.RouteDef]:
    return [web.get(ROUTE, download)]  # aiohttp answers HEAD through the GET route, without a body
