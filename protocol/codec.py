"""Turn frames into validated messages and back.

Validation happens in a fixed order so the error names the first thing a
sender must fix: size, JSON, version, type (for this direction), fields.
"""
from __future__ import annotations

import json
from typing import Mapping

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
    if len(frame) > MAX_FRAME_BYTES:
        raise ProtocolError(ErrorCode.TOO_LARGE, f"frame has {len(frame)} bytes, the limit is {MAX_FRAME_BYTES}")
    try:
        data = json.loads(frame)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProtocolError(ErrorCode.BAD_JSON, f"frame is not valid JSON ({exc.__class__.__name__})") from None
    if not isinstance(data, dict):
        raise ProtocolError(ErrorCode.BAD_JSON, "frame must be a JSON object")
    kind = data.get("type")
    ref = kind if isinstance(kind, str) and len(kind) <= 40 else None
    version = data.get("v", 1)
    if type(version) is not int or version not in SUPPORTED_VERSIONS:
        raise ProtocolError(ErrorCode.UNSUPPORTED_VERSION,
                            f"protocol version {version!r} is not supported (supported: 1)", ref=ref)
    if not isinstance(kind, str):
        raise ProtocolError(ErrorCode.INVALID_FIELD, "field 'type' is missing or not a string")
    cls = direction.get(kind)
    if cls is None:
        raise ProtocolError(ErrorCode.UNKNOWN_TYPE, f"message type {ref or '(too long)'!r} is not accepted here",
                            ref=ref)
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "message"
        raise ProtocolError(ErrorCode.INVALID_FIELD, f"{where}: {first['msg']}", ref=ref) from None


def encode(message: Message) -> str:
    return message.model_dump_json(exclude_none=False)


def error_frame(err: ProtocolError) -> str:
    return encode(Error(type="error", code=err.code.value, detail=err.detail[:500], ref=err.ref))
