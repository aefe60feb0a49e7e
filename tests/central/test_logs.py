"""Nothing in central's log carries a client's address (docs/decisions/0003-live-state-and-privacy.md).

The address a test client has (127.0.0.1, or 203.0.113.77 named by a trusted proxy) must
appear in no log record, whatever goes wrong: a malformed request, a request that is
not HTTP at all, a handler that fails with the address in its exception.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging

import pytest

from central.logfilter import redact

PEER = "127.0.0.1"
FORWARDED = "203.0.113.77"


async def raw_request(central, data: bytes) -> bytes:
    host, port = central.url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(data)
    await writer.drain()
    try:
        return await asyncio.wait_for(reader.read(65536), 5)
    finally:
        writer.close()


def everything_logged(records: list[logging.LogRecord]) -> str:
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    return "\n".join(formatter.format(r) + repr(getattr(r, "args", None)) for r in records)


async def test_failing_requests_leave_no_client_address_in_the_log(central, caplog, monkeypatch):
    caplog.set_level(logging.DEBUG)
    # Not HTTP at all (first request on the connection).
    await raw_request(central, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 64)
    # A malformed header.
    assert b" 400 " in await raw_request(
        central, f"GET /status HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: {FORWARDED}\r\nNo colon here\r\n\r\n".encode())

    # A handler that fails, with addresses in its exception (as a database driver's may have).
    async def broken(_token: str):
        raise ConnectionRefusedError(f"connection to {FORWARDED}:5432 and [2001:db8::7]:5432 refused")
    monkeypatch.setattr(central.db, "session", broken)
    async with central.session.get(central.url + "/status", headers={"Cookie": "ak_session=x",
                                                                     "X-Forwarded-For": FORWARDED}) as r:
        assert r.status == 500

    # A bug while handling a kiosk's message, with the kiosk's candidate in the exception.
    def failing(_peer, message):
        raise RuntimeError(f"could not relay {message!r} to 198.51.100.23")
    monkeypatch.setattr(central.hub, "kiosk_message", failing)
    with contextlib.suppress(Exception):
        kiosk = await central.kiosk()
        await kiosk.send(v=1, type="ping")
        await kiosk.recv(timeout=2)

    logged = everything_logged(caplog.records)
    assert "Error handling request from [address]" in logged  # the errors were logged...
    assert "ConnectionRefusedError: connection to [address]:5432 and [[address]]:5432 refused" in logged
    assert "message handling failed" in logged
    for address in (PEER, FORWARDED, "2001:db8::7", "198.51.100.23"):  # ...without anyone's address
        assert address not in logged


@pytest.mark.parametrize(("text", "expected"), [
    ("Error handling request from 192.0.2.1", "Error handling request from [address]"),
    ("peer ('::ffff:192.0.2.1', 4431, 0, 0)", "peer ('[address]', 4431, 0, 0)"),
    ("fe80::1%eth0 and 2001:db8::1", "[address] and [address]"),
    ("at 12:30:45 on 2026-12-03, version 3.14.5, ratio 1:2", "at 12:30:45 on 2026-12-03, version 3.14.5, ratio 1:2"),
    ("deadbeef::cafe is no address, face:b00c::1 is", "deadbeef::cafe is no address, [address] is"),
])
def test_addresses_are_redacted_and_nothing_else(text, expected):
    assert redact(text) == expected
