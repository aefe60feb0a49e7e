"""The kernel's memory-deny-write-execute, as systemd's MemoryDenyWriteExecute= applies it.

``prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN)`` (Linux 6.3+) refuses any mapping that is,
or later becomes, both writable and executable; it is inherited by child processes and
kept across exec, like systemd's seccomp filter for the same setting.

    python -m tests.image.mdwe PROGRAM ARGS...   run PROGRAM under it (as is on older kernels)
"""
from __future__ import annotations

import ctypes
import mmap
import os
import sys

PR_SET_MDWE, PR_GET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN = 65, 66, 1


def supported() -> bool:
    return ctypes.CDLL(None, use_errno=True).prctl(PR_GET_MDWE, 0, 0, 0, 0) >= 0


def enable() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_MDWE) failed: the kernel is older than 6.3")
    try:  # the restriction is real: a writable and executable mapping is refused
        mmap.mmap(-1, mmap.PAGESIZE, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC).close()
    except PermissionError:
        return
    raise AssertionError("PR_SET_MDWE is set but a writable+executable mapping was allowed")


if __name__ == "__main__":
    if supported():
        enable()
    os.execvp(sys.argv[1], sys.argv[1:])
