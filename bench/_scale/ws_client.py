"""A bare WebSocket client for the load generator's processes: frames are parsed in ``data_received``.

aiohttp's client hands every frame to a reading task through a future: some 40 frames per visit to the
consoles made the consoles' process cost as much CPU as central itself (docs/benchmarks.md, "The stalls:
central waiting for a CPU"), on the same two cores. Here a frame costs a slice of a buffer and a call.
Only what central sends a console or a kiosk is handled: unfragmented text frames, pings (answered), close; anything
else ends the connection with an error, so the benchmark never measures a half-understood stream.
"""
from __future__ import annotations

import asyncio
import base64
import os
import struct
from collections.abc import Callable
from urllib.parse import urlsplit

from bench._common import BenchError

TEXT, CLOSE, PING, PONG = 0x1, 0x8, 0x9, 0xA
CLOSE_NORMAL = struct.pack("!H", 1000)


def client_frame(opcode: int, payload: bytes = b"") -> bytes:
    """A client's frame (RFC 6455 5.2): FIN, ``opcode``, masked as a client must mask; up to 64 KiB (a kiosk's
    messages, pongs, the close)."""
    length = len(payload)
    if length < 126:
        header = bytes((0x80 | opcode, 0x80 | length))
    elif length < 1 << 16:
        header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, length)
    else:
        raise BenchError(f"this client sends frames of up to 64 KiB, not {length} bytes")
    mask = os.urandom(4)
    keys = (mask * (length // 4 + 1))[:length]
    return header + mask + (int.from_bytes(payload, "big") ^ int.from_bytes(keys, "big")).to_bytes(length, "big")


class WebSocketClient(asyncio.Protocol):
    """One connection; ``on_text(text, when)`` gets each text frame with the ``time.perf_counter()`` of the
    read that brought it, ``on_closed(why)`` once the connection is gone (``why``: what this client could not
read, or None)."""

    def __init__(self, request: bytes, on_text: Callable[[str, float], None], on_closed: Callable[[str | None], None],
                 clock: Callable[[], float]):
        self._request = request
        self._on_text, self._on_closed, self._clock = on_text, on_closed, clock
        self._buffer = bytearray()
        self._upgraded = False
        self.transport: asyncio.Transport | None = None
        self.failed: str | None = None

    @classmethod
    async def connect(cls, url: str, path: str, headers: dict[str, str], on_text: Callable[[str, float], None],
                      on_closed: Callable[[str | None], None], clock: Callable[[], float]) -> WebSocketClient:
        parts = urlsplit(url)
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [f"GET {path} HTTP/1.1", f"Host: {parts.netloc}", "Upgrade: websocket", "Connection: Upgrade",
                 f"Sec-WebSocket-Key: {key}", "Sec-WebSocket-Version: 13",
                 *(f"{name}: {value}" for name, value in headers.items())]
        request = ("\r\n".join(lines) + "\r\n\r\n").encode()
        loop = asyncio.get_running_loop()
        _, client = await loop.create_connection(lambda: cls(request, on_text, on_closed, clock),
                                                 parts.hostname, parts.port)
        return client

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        transport.write(self._request)

    def data_received(self, data: bytes) -> None:
        when = self._clock()
        buffer = self._buffer
        buffer += data
        at = 0
        if not self._upgraded:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            status = bytes(buffer[:buffer.find(b"\r\n")])
            if not status.startswith(b"HTTP/1.1 101"):
                return self._fail(f"central refused the WebSocket: {status.decode(errors='replace')}")
            self._upgraded, at = True, end + 4
        size = len(buffer)
        while size - at >= 2:
            first, second = buffer[at], buffer[at + 1]
            length, start = second & 0x7F, at + 2
            if length == 126:
                if size - at < 4:
                    break
                length, start = int.from_bytes(buffer[at + 2:at + 4], "big"), at + 4
            elif length == 127:
                if size - at < 10:
                    break
                length, start = int.from_bytes(buffer[at + 2:at + 10], "big"), at + 10
            if size < start + length:
                break
            if second & 0x80 or first & 0x70 or not first & 0x80:
                return self._fail(f"a masked, compressed or fragmented frame from central (first bytes "
                                  f"{first:#04x} {second:#04x}): this client cannot read it")
            payload, at = bytes(buffer[start:start + length]), start + length
            opcode = first & 0x0F
            if opcode == TEXT:
                self._on_text(payload.decode(), when)
            elif opcode == PING:
                self.transport.write(client_frame(PONG, payload))
            elif opcode == CLOSE:
                self.transport.write(client_frame(CLOSE, payload[:2]))
                self.transport.close()
                break
            elif opcode != PONG:
                return self._fail(f"a frame of opcode {opcode:#x} from central: this client cannot read it")
        del buffer[:at]

    def _fail(self, why: str) -> None:
        self.failed = why
        if self.transport is not None:
            self.transport.abort()

    def send_text(self, text: str) -> None:
        if self.transport is None or self.transport.is_closing():
            raise ConnectionResetError("the WebSocket is closed")
        self.transport.write(client_frame(TEXT, text.encode()))

    def close(self) -> None:
        """Start the closing handshake; central answers and closes."""
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(client_frame(CLOSE, CLOSE_NORMAL))

    def connection_lost(self, exc: Exception | None) -> None:
        self._on_closed(self.failed)
