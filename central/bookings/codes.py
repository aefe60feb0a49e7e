"""Booking codes: 8 characters of Crockford's base32 (protocol.base.BookingCode), 40 random bits.

A code is the booking's only key: whoever holds it may see, cancel and use the booking, and
nothing else about the booking identifies anyone. Central stores only its hash.
"""
from __future__ import annotations

import hashlib
import re
import secrets

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford: no I, L, O, U
LENGTH = 8
_CODE = re.compile(r"^[0-9A-HJKMNP-TV-Z]{8}$")
# What people mistype or read differently (Crockford's decoding rules).
_READ_AS = str.maketrans({"O": "0", "I": "1", "L": "1"})


def new_code() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))


def normalise(text: str) -> str | None:
    """The code a citizen typed or a QR code held (``7k3m-9qx2``, ``7K3M 9QX2``, a link ending in it), or None."""
    last = text.strip().rstrip("/").rsplit("/", 1)[-1]
    code = re.sub(r"[\s-]", "", last).upper().translate(_READ_AS)
    return code if _CODE.fullmatch(code) else None


def shown(code: str) -> str:
    """As people read it: ``7K3M-9QX2``."""
    return f"{code[:4]}-{code[4:]}"


def code_hash(code: str) -> str:
    return hashlib.sha256(code.encode("ascii")).hexdigest()
