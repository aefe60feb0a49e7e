"""The optional confirmation of a booking by e-mail, through the city's mail server (Config.smtp_*).

The address is used for this one message: it is not stored, not logged and not kept in memory after
sending. Sending runs in a thread (smtplib), bounded by TIMEOUT_S, so the page answers even if the
server does not.
"""
from __future__ import annotations

import asyncio
import logging
import re
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from central.config import Config

log = logging.getLogger(__name__)

TIMEOUT_S = 15.0
# Good enough to catch typing errors; the mail server has the last word.
_ADDRESS = re.compile(r"^[^@\s<>(),;:\"\\]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                      r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$")


def valid_address(text: str) -> str | None:
    text = text.strip()
    return text if len(text) <= 254 and _ADDRESS.fullmatch(text) else None


def build(config: Config, to: str, subject: str, body: str, ics: str, filename: str = "termin.ics") -> EmailMessage:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = config.smtp_from, to, subject
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = make_msgid(domain=config.smtp_from.rsplit("@", 1)[1])
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies to a robot
    msg.set_content(body)
    msg.add_attachment(ics.encode("utf-8"), maintype="text", subtype="calendar", filename=filename,
                       params={"method": "PUBLISH", "charset": "utf-8"})
    return msg


def _send(config: Config, msg: EmailMessage) -> None:
    with smtplib.SMTP(config.smtp_host, config.smtp_port, timeout=TIMEOUT_S) as smtp:
        smtp.ehlo()
        if config.smtp_starttls:
            if not smtp.has_extn("starttls"):
                raise smtplib.SMTPNotSupportedError("the mail server offers no STARTTLS; set smtp_starttls = false "
                                                    "only for a server on a trusted network")
            smtp.starttls(context=ssl.create_default_context())
            smtp.ehlo()
        smtp.send_message(msg)


async def send(config: Config, msg: EmailMessage) -> bool:
    """Send it; False (and a log line without the address) if the server refused or did not answer."""
    try:
        await asyncio.wait_for(asyncio.to_thread(_send, config, msg), TIMEOUT_S * 2)
        return True
    except (OSError, smtplib.SMTPException, TimeoutError) as exc:
        log.warning("booking confirmation not sent: %s", type(exc).__name__)
        return False
