"""Writing the unit's own files on the data partition so that a power cut never leaves half of one.

The Pi has no battery: power goes whenever someone pulls the plug. Each file (the token, the last
settings from central, the update marker) is written to a temporary name beside it, flushed, renamed
over the old one, and the directory flushed too, so the card holds the old file or the new one.
"""
from __future__ import annotations

import os
from pathlib import Path


def write_atomic(path: Path, data: str) -> None:
    """Replace ``path`` with ``data`` (UTF-8), readable by this user only (0600)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # A fixed temporary name: a file a power cut left behind is reused, never piles up.
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # also when the left-over file had other bits
        os.write(fd, data.encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)  # the rename itself must reach the card
    finally:
        os.close(directory)
