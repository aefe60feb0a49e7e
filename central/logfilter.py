"""No client address in central's log (docs/decisions/0003-live-state-and-privacy.md).

Central's own messages never name one, but the libraries underneath do: aiohttp's
server logs "Error handling request from <address>" for every malformed request
and every failing handler, and an exception's text may quote a header, a database
driver's peer or an ICE candidate. install() puts a filter on those libraries'
loggers and on central's own that replaces every IP address in a record (message,
arguments, traceback) with "[address]". The filter sits on the loggers, not on a
handler, so it works whichever handlers are configured (the console, the journal,
a test's capture).
"""
from __future__ import annotations

import ipaddress
import logging
import re
import traceback

REDACTED = "[address]"
# Loggers of libraries that may see a client's address. aiohttp.access stays off altogether
# (run_app(access_log=None)); it is filtered anyway in case someone switches it on.
LIBRARY_LOGGERS = ("aiohttp.access", "aiohttp.client", "aiohttp.internal", "aiohttp.server", "aiohttp.web",
                   "aiohttp.websocket", "asyncio")

# Candidates only; each is checked with ipaddress, so times (12:30:45) and versions stay.
_IPV6 = re.compile(r"(?<![\w:.])[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?:\.\d{1,3}){0,3}(?:%[\w.-]+)?(?![\w:])")
_IPV4 = re.compile(r"(?<![\w.])\d{1,3}(?:\.\d{1,3}){3}(?!\w|\.\d)")  # a port may follow (192.0.2.1:443)


def _replace(match: re.Match[str]) -> str:
    try:
        ipaddress.ip_address(match[0].split("%")[0])
    except ValueError:
        return match[0]
    return REDACTED


def redact(text: str) -> str:
    """``text`` with every IPv4 or IPv6 address replaced by REDACTED."""
    return _IPV4.sub(_replace, _IPV6.sub(_replace, text))


class NoClientAddresses(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = redact("".join(traceback.format_exception(*record.exc_info)).rstrip("\n"))
            record.exc_info = None  # formatters now print exc_text, the redacted one
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


_FILTER = NoClientAddresses()


def install() -> None:
    """Filter the library loggers and central's (once, however often central's app is created).

    A logger's filter sees only records made on that very logger, so every central.*
    logger gets it: call this after central's modules are imported (create_app does).
    """
    names = [*LIBRARY_LOGGERS, *(n for n in logging.root.manager.loggerDict if n.split(".")[0] == "central")]
    for name in names:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
