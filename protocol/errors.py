"""Typed protocol errors: what went wrong with a message, said so a sender can act."""
from __future__ import annotations

import enum


class ErrorCode(str, enum.Enum):
    """Codes carried by the ``error`` message. Stable: clients switch on them."""

    BAD_JSON = "bad_json"                  # frame is not a JSON object
    TOO_LARGE = "too_large"                # frame exceeds MAX_FRAME_BYTES
    UNSUPPORTED_VERSION = "unsupported_version"
    UNKNOWN_TYPE = "unknown_type"          # type not defined for this direction
    INVALID_FIELD = "invalid_field"        # missing, extra, wrong type or out of limits
    NOT_YOUR_VISIT = "not_your_visit"      # visit unknown or belongs to somebody else
    WRONG_STATE = "wrong_state"            # valid message, but not now
    FORBIDDEN = "forbidden"                # authenticated, but not allowed (e.g. other department)
    CLOSED = "closed"                      # department outside office hours
    UNKNOWN_DEPARTMENT = "unknown_department"
    ALREADY_TAKEN = "already_taken"        # another clerk picked this visit up first
    QUEUE_EMPTY = "queue_empty"
    RATE_LIMITED = "rate_limited"
    REPLACED = "replaced"                  # the same kiosk or clerk connected again; this socket closes
    SESSION_ENDED = "session_ended"        # the clerk was logged out, reset or deactivated; this socket closes
    INTERNAL_ERROR = "internal_error"      # central failed to handle a valid message; nothing changed, retry


class AmtsklingelError(Exception):
    """Root of every exception raised by this project."""


class ProtocolError(AmtsklingelError):
    """A message that cannot be accepted. Carries the code sent back to the sender."""

    def __init__(self, code: ErrorCode, detail: str, *, ref: str | None = None):
        super().__init__(f"{code.value}: {detail}")
        self.code = code
        self.detail = detail
        self.ref = ref  # type of the offending message, when it could be read
