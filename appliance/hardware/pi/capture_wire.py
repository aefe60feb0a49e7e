"""What the appliance and its microphone process say to each other over two pipes.

Every message is one tag byte, the payload's length (4 bytes, little endian) and the payload. The
appliance writes to the process's stdin (the far end as the speaker's device takes it, the speaker's
position and silences, bypass, capture on and off); the process writes to its stdout (ready, 20 ms
frames with the echo removed, the canceller falling behind, a failed device). process_microphone.py and capture_process.py use them.

A message of the far end is at most :data:`ATOMIC_BYTES` long: a write of up to PIPE_BUF bytes to a pipe
is all or nothing, so the speaker's thread can write without blocking and lose whole messages at worst,
never half of one.
"""
from __future__ import annotations

import struct
from typing import BinaryIO

from appliance.hardware.errors import HardwareError

HEADER = struct.Struct("<cI")
ATOMIC_BYTES = 4096  # PIPE_BUF on Linux
MAX_FAR_SAMPLES = (ATOMIC_BYTES - HEADER.size) // 2
MAX_PAYLOAD = 64 * 1024  # far more than any message needs: a longer one is a broken stream

# Appliance -> process
FAR_END = b"F"       # s16 samples the speaker's device plays next
POSITION = b"P"      # <qB: samples the speaker's device has played in all, restarted after an underrun
SILENCE = b"S"       # <q: silence the speaker's device played unasked; -1: it stood still for an unknown time
BYPASS = b"B"        # <B: 1 while the self-test's tone must reach the call untouched
START = b"R"         # <I: start capturing; frames carry this number (a track's)
STOP = b"H"          # stop capturing
# Process -> appliance
READY = b"Y"         # the process has loaded and waits for orders
FRAME = b"A"         # <Iq + s16 samples: the track's number, the index of the first sample, 20 ms of sound
FAILED = b"E"        # <I + UTF-8: the track's number, why capture stopped (a device unplugged or refused)
BEHIND = b"K"        # <II: the track's number, ms of sound the canceller skipped because it fell behind

POSITION_BODY = struct.Struct("<qB")
COUNT = struct.Struct("<q")
FLAG = struct.Struct("<B")
TRACK = struct.Struct("<I")
FRAME_HEAD = struct.Struct("<Iq")
BEHIND_BODY = struct.Struct("<II")


class WireError(HardwareError):
    """The other side of the pipe sent something that is not a message: the stream cannot go on."""


def message(tag: bytes, payload: bytes = b"") -> bytes:
    if len(payload) > MAX_PAYLOAD:
        raise WireError(f"a {tag!r} message of {len(payload)} bytes is longer than {MAX_PAYLOAD}")
    return HEADER.pack(tag, len(payload)) + payload


def read_message(stream: BinaryIO) -> tuple[bytes, bytes] | None:
    """The next message, or None at the end of the stream (the other side closed it or died)."""
    head = _read_exactly(stream, HEADER.size, at_start=True)
    if head is None:
        return None
    tag, length = HEADER.unpack(head)
    if length > MAX_PAYLOAD:
        raise WireError(f"a message says it is {length} bytes long (at most {MAX_PAYLOAD}): the stream is broken")
    payload = _read_exactly(stream, length, at_start=False) if length else b""
    return tag, payload


def _read_exactly(stream: BinaryIO, size: int, *, at_start: bool) -> bytes | None:
    data = b""
    while len(data) < size:
        chunk = stream.read(size - len(data))
        if not chunk:
            if at_start and not data:
                return None
            raise WireError(f"the stream ended inside a message ({len(data)} of {size} bytes)")
        data += chunk
    return data
