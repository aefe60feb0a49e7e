"""The optional confirmation e-mail, sent through a real SMTP server on loopback (aiosmtpd) that the test starts.

The address is used for that one message: it is in no table, no log line and nowhere in the database file.
"""
from __future__ import annotations

import datetime as dt
import email
import logging
import socket
from email.message import Message
from email.policy import default as default_policy

import pytest
from aiosmtpd.controller import Controller

from central.bookings.slots import SlotSettings
from central.config import Config
from tests.central.conftest import running_central
from tests.central.test_booking_pages import CODE_RE, MONDAY_8, get, post

ADDRESS = "buerger.in@example.org"


class Inbox:
    """aiosmtpd handler: keeps what it was given."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], Message]] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's name
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos),
                              email.message_from_bytes(envelope.content, policy=default_policy)))
        return "250 Message accepted for delivery"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtp_server():
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield inbox, controller.port
    finally:
        controller.stop()


async def test_the_confirmation_goes_out_once_and_the_address_is_kept_nowhere(tmp_path, smtp_server, caplog):
    inbox, port = smtp_server
    config = Config(database_url=f"sqlite:///{tmp_path}/central.db", secure_cookies=False, smtp_host="127.0.0.1",
                    smtp_port=port, smtp_from="termine@musterdorf.example", smtp_starttls=False)
    caplog.set_level(logging.DEBUG)
    async with running_central(config) as central:
        central.clock.fixed = MONDAY_8
        await central.db.bookings.save_settings("ordnungsamt", SlotSettings(slot_minutes=30))
        status, text, _ = await get(central, "/booking/office/ordnungsamt?lang=de")
        assert 'name="email"' in text  # offered only with a mail server
        status, _, r = await post(central, "/booking/office/ordnungsamt?lang=de",
                                  {"start": "2026-12-07T10:00", "email": f"  {ADDRESS} "})
        assert status == 303 and r.headers["Location"].endswith("?done=sent")
        status, text, _ = await get(central, r.headers["Location"] + "&lang=de")
        shown = CODE_RE.search(text)[1]
        assert "Eine Bestätigung wurde an Ihre E-Mail-Adresse gesendet." in text

        [(sender, recipients, message)] = inbox.messages
        assert (sender, recipients) == ("termine@musterdorf.example", [ADDRESS])
        assert message["Subject"] == "Ihr Termin bei Ordnungsamt: Montag, 7. Dezember 2026, 10:00"
        body = message.get_body(("plain",)).get_content()
        assert shown in body and f"{central.url}/booking/{shown.replace('-', '')}" in body
        [calendar] = [part for part in message.iter_attachments() if part.get_content_type() == "text/calendar"]
        assert "DTSTART;TZID=Europe/Berlin:20261207T100000" in calendar.get_content()

        # A bad address books nothing and says so; without a mail server the field is not there at all.
        status, text, _ = await post(central, "/booking/office/ordnungsamt?lang=en",
                                     {"start": "2026-12-07T10:30", "email": "not an address"})
        assert status == 400 and "This is not an e-mail address" in text and "not an address" in text
        assert len(await central.db.bookings.seats_taken("ordnungsamt", dt.date(2026, 12, 7))) == 1
        database = (tmp_path / "central.db").read_bytes() + b"".join(
            p.read_bytes() for p in tmp_path.glob("central.db-*"))
    assert ADDRESS.encode() not in database
    ours = [r.getMessage() for r in caplog.records if not r.name.startswith("mail.log")]  # not the test's server
    assert ours and not [line for line in ours if ADDRESS in line]


async def test_a_mail_server_that_is_away_does_not_stop_the_booking(tmp_path):
    config = Config(database_url=f"sqlite:///{tmp_path}/central.db", secure_cookies=False, smtp_host="127.0.0.1",
                    smtp_port=free_port(), smtp_from="termine@musterdorf.example", smtp_starttls=False)
    async with running_central(config) as central:
        central.clock.fixed = MONDAY_8
        await central.db.bookings.save_settings("ordnungsamt", SlotSettings(slot_minutes=30))
        status, _, r = await post(central, "/booking/office/ordnungsamt", {"start": "2026-12-07T10:00",
                                                                           "email": ADDRESS})
        assert status == 303 and r.headers["Location"].endswith("?done=unsent")
        status, text, _ = await get(central, r.headers["Location"] + "&lang=en")
        assert "could not be sent. Please write down the code." in text and CODE_RE.search(text)


def test_starttls_is_required_unless_switched_off(smtp_server):
    from central.bookings import mail

    _, port = smtp_server
    config = Config(database_url="sqlite://", smtp_host="127.0.0.1", smtp_port=port, smtp_from="a@b.example")
    message = mail.build(config, ADDRESS, "s", "b", "BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n")
    with pytest.raises(mail.smtplib.SMTPNotSupportedError, match="STARTTLS"):
        mail._send(config, message)
