"""Typed protocol errors: what went wrong with a message, said so a sender can act."""
from __future__ import annotations

import enum


class ErrorCode(str, enum.Enum):
    """Codes carried by the ``error`` message. Stable: clients switch on them.

    Each code carries its ``meaning``, said for a client's developer; docs/protocol.md shows it.
    """

    def __new__(cls, value: str, meaning: str = ""):
        member = str.__new__(cls, value)
        member._value_ = value
        member.meaning = meaning
        return member

    BAD_JSON = "bad_json", "Not JSON, not a JSON object, or a binary frame that is not UTF-8 JSON."
    TOO_LARGE = "too_large", "The frame exceeds `MAX_FRAME_BYTES`."
    UNSUPPORTED_VERSION = "unsupported_version", "`v` is present but not the integer 1."
    UNKNOWN_TYPE = "unknown_type", ("A type not defined for this direction (a kiosk sending `visit.pickup`), "
                                    "or no such type at all.")
    INVALID_FIELD = "invalid_field", ("A field is missing, unknown, of the wrong type or out of its limits; "
                                      "`detail` names it.")
    NOT_YOUR_VISIT = "not_your_visit", ("The visit does not exist (any more), or belongs to another kiosk or "
                                        "clerk; also a `visit.resume` whose token is invalid or expired.")
    WRONG_STATE = "wrong_state", "Valid, but not now: an offer before the pick-up, a pick-up during a call."
    FORBIDDEN = "forbidden", ("Authenticated, but not allowed: a clerk acting on a department they do not serve "
                              "(also picking up another department's visit that is in a call).")
    CLOSED = "closed", "A transfer to a department outside its office hours."
    UNKNOWN_DEPARTMENT = "unknown_department", "A transfer to a department that does not exist."
    ALREADY_TAKEN = "already_taken", "Another clerk picked this visit up first."
    QUEUE_EMPTY = "queue_empty", "\"Pick up next\" (`visit.pickup` with `department`) with nobody waiting."
    RATE_LIMITED = "rate_limited", ("Too many messages of this kind for now (more than 10 texts to one visit, "
                                    "visit requests or a call's offers, answers and candidates far beyond need); "
                                    "`retry_after_s` says after how many seconds it is accepted again.")
    REPLACED = "replaced", ("The same kiosk or clerk connected again elsewhere; this socket closes. "
                            "Do not reconnect in a loop.")
    SESSION_ENDED = "session_ended", ("The clerk was logged out, reset or deactivated; this socket closes. "
                                      "Log in again; do not reconnect.")
    NOT_OFFERED = "not_offered", ("An `update.status` for a bundle central has not offered this kiosk (or does "
                                  "not know at all).")
    UNKNOWN_PEER = "unknown_peer", ("`peer` names nobody in this call: never there, or already left or removed "
                                    "(harmless right after `call.participant_left` or `guest.status` `gone`).")
    INTERNAL_ERROR = "internal_error", "Central failed to handle a valid message; nothing changed, try again."


class AmtsklingelError(Exception):
    """Root of every exception raised by this project."""


class ProtocolError(AmtsklingelError):
    """A message that cannot be accepted. Carries the code sent back to the sender."""

    def __init__(self, code: ErrorCode, detail: str, *, ref: str | None = None, retry_after_s: int | None = None):
        super().__init__(f"{code.value}: {detail}")
        self.code = code
        self.detail = detail
        self.ref = ref  # type of the offending message, when it could be read
        self.retry_after_s = retry_after_s  # with RATE_LIMITED: when to try again
