"""Central's bundle download played by a test: ``GET|HEAD /updates/bundles/{id}/{name}.raucb`` with the
kiosk token, one Range, If-Range with an ETag, 206/416, as central/updates serves it.

Knobs for what goes wrong on a real line: ``cut_at`` (the connection drops once after that many
bytes of the file were sent), ``status`` (every answer is this error), ``claimed_size`` (HEAD says
another length), ``change()`` (the file on central is replaced: a new ETag).
"""
from __future__ import annotations

import hashlib
import re
import socket
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from aiohttp import web

TOKEN = "kiosk-1.secret-token-for-tests"
PATH = "/updates/bundles/7/amtsklingel-2.0.raucb"


@dataclass
class BundleServer:
    data: bytes
    etag: str = '"v1"'
    cut_at: list[int] = field(default_factory=list)   # file offsets at which one connection each is cut
    status: int | None = None
    claimed_size: int | None = None
    requests: list[tuple[str, str | None, str | None]] = field(default_factory=list)  # method, Range, If-Range
    sent: int = 0
    url: str = ""

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    def change(self, data: bytes) -> None:
        self.data, self.etag = data, '"v2"'

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.requests.append((request.method, request.headers.get("Range"), request.headers.get("If-Range")))
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return web.Response(status=401)
        if self.status is not None:
            return web.Response(status=self.status)
        size = len(self.data)
        headers = {"ETag": self.etag, "Accept-Ranges": "bytes"}
        if request.method == "HEAD":
            return web.Response(headers={**headers, "Content-Length": str(self.claimed_size or size)})
        first, last, status = 0, size - 1, 200
        wanted = re.match(r"bytes=(\d+)-(\d*)$", request.headers.get("Range", ""))
        if wanted and request.headers.get("If-Range", self.etag) == self.etag:
            first = int(wanted.group(1))
            last = min(size - 1, int(wanted.group(2))) if wanted.group(2) else size - 1
            if first >= size:
                return web.Response(status=416, headers={"Content-Range": f"bytes */{size}"})
            status = 206
            headers["Content-Range"] = f"bytes {first}-{last}/{size}"
        response = web.StreamResponse(status=status, headers={**headers, "Content-Length": str(last - first + 1)})
        await response.prepare(request)
        position = first
        while position <= last:
            end = min(last + 1, position + 8192)
            cuts = [c for c in self.cut_at if position <= c < end]
            if cuts:
                self.cut_at.remove(cuts[0])
                await response.write(self.data[position:cuts[0]])
                request.transport.close()  # the line drops in the middle of the answer
                return response
            await response.write(self.data[position:end])
            self.sent += end - position
            position = end
        await response.write_eof()
        return response


@asynccontextmanager
async def serving(server: BundleServer):
    app = web.Application()
    app.router.add_route("*", PATH, server.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    site = web.SockSite(runner, sock)
    await site.start()
    server.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    try:
        yield server
    finally:
        await runner.cleanup()
