"""A booked appointment at the kiosk: which one a code is, asked before the citizen queues.

The kiosk reads only a code (from the booking's QR code or typed on its keypad). ``visit.request``
needs the department, and the citizen should see what was found ("10:30, Bürgerbüro") or why not
before anything else happens, so the kiosk asks central with ``booking.lookup`` first; central
answers ``booking.found``. The status words are those of ``visit.refused`` (protocol/messages.py).

Also here: reading a code from what a citizen typed or a QR code holds, the same rule everywhere.
"""
from __future__ import annotations

import re
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field

from protocol.base import BookingCode, Message, Slug

# "now": a `visit.request` with this code sent now is queued ahead of walk-ins; the other two are
# `visit.refused` reasons.
BookingStatus = Literal["now", "booking_unknown", "booking_other_time"]

# A QR code holds at most ~3 KB; a booking's link is well under 200 characters. Longer content is not
# a booking and is not even looked at.
MAX_QR_TEXT = 512
_CODE = re.compile(r"^[0-9A-HJKMNP-TV-Z]{8}$")
# What people mistype or read differently (Crockford's decoding rules): O is 0, I and L are 1.
_READ_AS = str.maketrans({"O": "0", "I": "1", "L": "1"})
_SEPARATORS = re.compile(r"[\s-]")


class BookingLookup(Message):
    """Kiosk -> central: a citizen showed (or typed) this booking code; which appointment is it?"""
    type: Literal["booking.lookup"]
    booking: BookingCode


class BookingFound(Message):
    """Central -> kiosk: the answer to `booking.lookup`.

    With `booking_unknown` nothing about the booking is told (no such code, used or cancelled, or a
    department this kiosk does not offer)."""
    type: Literal["booking.found"]
    booking: BookingCode
    status: BookingStatus = Field(description="`now`: send `visit.request` with `department` and `booking` to "
                                              "be queued ahead of walk-ins; `booking_other_time`: the slot is "
                                              "another day or hour (see `slot_start`); `booking_unknown`.")
    department: Slug | None = Field(None, description="The booking's department (not with `booking_unknown`).")
    slot_start: str | None = Field(None, description="The slot's start, ISO 8601 with the town's offset.")
    slot_end: str | None = Field(None, description="The slot's end, ISO 8601 with the town's offset.")


def normalise_booking_code(text: str) -> str | None:
    """The code in what a citizen typed (``7k3m-9qx2``, ``7K3M 9QX2``, ``7K3M9OX2``), or None."""
    if len(text) > 40:
        return None
    code = _SEPARATORS.sub("", text).upper().translate(_READ_AS)
    return code if _CODE.fullmatch(code) else None


def booking_code_in_qr(text: str) -> str | None:
    """The booking code a QR code holds: the booking's link (``https://…/booking/7K3M9QX2``, query and
    fragment ignored) or the bare code. Anything else (another link, a Wi-Fi QR code, text) is None.

    The link's host is not checked: the kiosk never opens it, only the code goes to its own central,
    which knows whether it is one of its bookings."""
    text = text.strip()
    if len(text) > MAX_QR_TEXT or not text.isprintable():
        return None
    if "://" not in text:
        return normalise_booking_code(text)
    try:
        parts = urlsplit(text)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https"):
        return None
    path = [p for p in parts.path.split("/") if p]
    if len(path) < 2 or path[-2].lower() != "booking":
        return None
    return normalise_booking_code(path[-1])
