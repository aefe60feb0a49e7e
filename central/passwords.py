"""Password hashing with argon2id (argon2-cffi's defaults follow RFC 9106), off the event loop.

One check costs about a third of a second of CPU and 64 MiB of memory. Run on the
event loop it would stall every page, ping and call signal meanwhile, so central
runs checks in :class:`PasswordWorkers`: a few threads (argon2-cffi releases the
GIL, so a thread computes in parallel with the loop; a process pool measured no
better and costs a process per worker) at lowered CPU priority, with a bounded
queue in front. Sixteen wrong logins at once then cost at most ``workers`` times
64 MiB, and the loop keeps its core.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import os
import threading
from collections.abc import Callable

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from protocol.errors import AmtsklingelError

_hasher = PasswordHasher()
# Verifying against this when the user does not exist keeps the timing the same.
_DUMMY = _hasher.hash("not a password")

MIN_LENGTH = 10
# A niceness of 10 lets the event loop (at 0) win the CPU whenever both want it.
WORKER_NICENESS = 10


class PasswordTooShort(AmtsklingelError, ValueError):
    """The new password is shorter than MIN_LENGTH."""


class PasswordsBusy(AmtsklingelError, RuntimeError):
    """More password checks are waiting than the server takes on; try again in a few seconds."""


def hash_password(password: str) -> str:
    if len(password) < MIN_LENGTH:
        raise PasswordTooShort(f"a password needs at least {MIN_LENGTH} characters")
    return _hasher.hash(password)


def verify(stored_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(stored_hash or _DUMMY, password) and stored_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    return _hasher.check_needs_rehash(stored_hash)


def _lower_priority() -> None:
    try:  # Linux: a thread is a task with its own niceness
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), WORKER_NICENESS)
    except (AttributeError, OSError):
        pass  # elsewhere the threads simply run at the process's priority


def default_workers() -> int:
    """One core for the event loop, the rest (at most 4) for password checks."""
    return max(1, min(4, (os.cpu_count() or 2) - 1))


class PasswordWorkers:
    """Hashes and checks passwords in a bounded pool of threads.

    ``workers`` checks run at once; up to ``max_waiting`` more wait their turn, and
    a check beyond that raises :class:`PasswordsBusy` at once instead of queueing
    without bound.
    """

    def __init__(self, workers: int | None = None, max_waiting: int = 32):
        self.workers = workers or default_workers()
        self.max_waiting = max_waiting
        self._executor = concurrent.futures.ThreadPoolExecutor(
            self.workers, thread_name_prefix="argon2", initializer=_lower_priority)
        self._pending = 0  # submitted and not yet finished; guarded by _lock
        self._lock = threading.Lock()

    async def verify(self, stored_hash: str | None, password: str) -> bool:
        """True if ``password`` matches; a missing hash costs the same time and is False."""
        return await self._run(verify, stored_hash, password)

    async def hash(self, password: str) -> str:
        return await self._run(hash_password, password)

    async def _run(self, fn: Callable, *args: object):
        with self._lock:
            if self._pending >= self.workers + self.max_waiting:
                raise PasswordsBusy("too many logins at once; try again in a few seconds")
            self._pending += 1
        try:
            job = self._executor.submit(fn, *args)
        except BaseException:
            self._finished(None)
            raise
        # Counted until the thread is done, even if the waiting request goes away meanwhile.
        job.add_done_callback(self._finished)
        return await asyncio.wrap_future(job)

    def _finished(self, _job: object) -> None:
        with self._lock:
            self._pending -= 1

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
