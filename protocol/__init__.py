"""Wire format shared by the kiosk, central and the staff console.

Every message is defined once in :mod:`protocol.messages` and validated with
:func:`protocol.codec.decode` on whichever end receives it.
"""
from protocol.codec import MAX_FRAME_BYTES, decode, encode
from protocol.errors import ErrorCode, ProtocolError

PROTOCOL_VERSION = 1

__all__ = ["MAX_FRAME_BYTES", "PROTOCOL_VERSION", "ErrorCode", "ProtocolError", "decode", "encode"]
