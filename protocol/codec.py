"""Turn frames into validated messages and back.

Validation happens in a fixed order so the error names the first thing a
sender must fix: size, JSON, version, type (for this direction), fields.
"""
from __future__ import annotations

import json
from collections.abc import Mapping

from pydantic import ValidationError

from protocol.errors import ErrorCode, ProtocolError
from protocol.messages import Error, Message

# An SDP offer with audio+video and all candidates stays below 16 KiB; 64 KiB
# leaves room without letting one peer make central buffer megabytes.
MAX_FRAME_BYTES = 64 * 1024
SUPPORTED_VERSIONS = frozenset({1})


def decode(frame: str | bytes, direction: Mapping[str, type[Message]]) -> Message:
    """Validate one WebSocket frame against the messages allowed in ``direction``.

    Raises :class:`ProtocolError` with the code to send back; never anything else.
    """
    # The limit is in bytes (as on the wire), not characters: "€" takes three.
    size = len(frame) if isinstance(frame, bytes) else len(frame.encode("utf-8", "surrogatepass"))
    if size > MAX_FRAME_BYTES:
        raise ProtocolError(ErrorCode.TOO_LARGE, f"frame has {size} bytes, the limit is {MAX_FRAME_BYTES}")
    try:
        # Binary frames must be UTF-8 too (json.loads would also guess UTF-16/32 from bytes).
        data = json.loads(frame.decode("utf-8") if isinstance(frame, bytes) else frame)
    except (ValueError, RecursionError) as exc:  # RecursionError: nesting too deep for the parser
        raise ProtocolError(ErrorCode.BAD_JSON, f"frame is not valid JSON ({exc.__class__.__name__})") from None
    if not isinstance(data, dict):
        raise ProtocolError(ErrorCode.BAD_JSON, "frame must be a JSON object")
    kind = data.get("type")
    ref = kind if isinstance(kind, str) and len(kind) <= 40 and _is_utf8(kind) else None
    version = data.get("v", 1)
    if type(version) is not int or version not in SUPPORTED_VERSIONS:
        raise ProtocolError(ErrorCode.UNSUPPORTED_VERSION,
                            f"protocol version {version!r} is not supported (supported: 1)", ref=ref)
    if not isinstance(kind, str):
        raise ProtocolError(ErrorCode.INVALID_FIELD, "field 'type' is missing or not a string")
    cls = direction.get(kind)
    if cls is None:
        raise ProtocolError(ErrorCode.UNKNOWN_TYPE, f"message type {ref or '(unreadable)'!r} is not accepted here",
                            ref=ref)
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "message"
        raise ProtocolError(ErrorCode.INVALID_FIELD, f"{where}: {first['msg']}", ref=ref) from None


def _is_utf8(text: str) -> bool:
    """False for strings with lone surrogates ("\\ud800" in JSON): they cannot be echoed back as ``ref``."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def encode(message: Message) -> str:
    return message.model_dump_json(exclude_none=False)


def error_frame(err: ProtocolError) -> str:
    return encode(Error(type="error", code=err.code.value, detail=err.detail[:500], ref=err.ref,
                        retry_after_s=err.retry_after_s))
