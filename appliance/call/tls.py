"""Whom the appliance trusts to be central: the system's CAs, or only the city's CA when ``ca_file`` is set.

Every connection to central (the kiosk link, the enrolment link) goes through ``Trust``, so
each checks central's certificate and host name the same way. There is deliberately no way
to switch the check off: a unit that trusted anyone would hand its token, and the
citizens' calls, to whoever answers on the network.
"""
from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp


@dataclass(frozen=True)
class Trust:
    ca_file: Path | None = None

    def context(self) -> ssl.SSLContext:
        # With a cafile, create_default_context loads that CA only, not the system's: a city CA
        # pins central to the city's own certificates.
        return ssl.create_default_context(cafile=str(self.ca_file) if self.ca_file else None)

    def http_session(self) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=self.context()))

    def explain(self, url: str, exc: aiohttp.ClientSSLError) -> str:
        """What to log for a failed TLS handshake: what is wrong and what to check."""
        host = urlsplit(url).hostname or url
        reason = getattr(exc, "certificate_error", None) or getattr(exc, "os_error", None) or exc
        issuer = (f"the CA in ca_file ({self.ca_file})" if self.ca_file
                  else "a CA the system trusts (or set ca_file to the city's CA)")
        return (
            f"central at {host} presented a certificate this unit does not trust ({reason}). Check that "
            f"central's certificate was issued by {issuer}, that it names {host} (central_url), and that this "
            "unit's clock is right")
