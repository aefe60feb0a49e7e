"""The bundles central holds and offers: ``app["bundles"]``, a :class:`BundleLibrary`.

Every bundle in it was checked when it came in (central/updates/checks.py: signature against the
update keyring at its signing time, compatible, hash tree); a refused file leaves nothing behind.
Files are kept as ``<bundle directory>/<sha256>.raucb`` and served to kiosks at
``BundleInfo.path`` (central/updates/download.py).

For the rollout: ``await library.get(bundle_id)`` and ``await library.list()`` give
:class:`BundleInfo`; ``library.removal_guards`` lets it refuse the removal of a bundle in use.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import hashlib
import logging
import os
import re
import secrets
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from central.config import Config
from central.storage.bundles import BundleRow, BundleStore
from central.updates.bundle_file import BundleRefused
from central.updates.checks import check_bundle
from protocol.errors import AmtsklingelError

log = logging.getLogger(__name__)

COMMAND_LINE = "command line"  # uploaded_by of bundles added with python -m central bundles add
PART_SUFFIX = ".part"          # a file still arriving (or left by a crash: removed after a day)
STALE_PART_S = 24 * 3600
COPY_CHUNK = 1024 * 1024
NAME_UNSAFE = re.compile(r"[^A-Za-z0-9._+~-]")
WORKER_NICENESS = 10  # the event loop (at 0) wins the CPU when both want it


class BundleUnavailable(AmtsklingelError, RuntimeError):
    """Central cannot take bundles as configured (no keyring, no directory), or not this one now
    (too large, already there, in use); the message says what to do."""


@dataclass(frozen=True)
class BundleInfo:
    id: int
    version: str
    compatible: str
    size_bytes: int
    sha256: str          # of the whole file; also its ETag
    signer: str          # subject of the signing certificate
    signed_at: float     # unix seconds
    uploaded_at: float   # unix seconds
    uploaded_by: str
    file: Path           # on central's disk

    @property
    def name(self) -> str:
        return "amtsklingel-" + NAME_UNSAFE.sub("_", self.version)

    @property
    def path(self) -> str:
        """Where kiosks fetch it (protocol.updates.BundlePath)."""
        return f"/updates/bundles/{self.id}/{self.name}.raucb"


RemovalGuard = Callable[[int], Awaitable[str | None]]  # bundle id -> why it must stay, or None


class BundleLibrary:
    def __init__(self, store: BundleStore, directory: Path | None, keyring: Path | None, compatible: str,
                 max_bytes: int):
        self.store = store
        self.directory = directory
        self.keyring = keyring
        self.compatible = compatible
        self.max_bytes = max_bytes
        self.removal_guards: list[RemovalGuard] = []
        # One check at a time, in a thread at lowered priority: it reads the whole file and hashes it.
        self._worker = concurrent.futures.ThreadPoolExecutor(1, "bundle-check", initializer=_lower_priority)
        self._checking = asyncio.Lock()

    @classmethod
    def from_config(cls, config: Config, store: BundleStore) -> BundleLibrary:
        return cls(store, config.bundle_directory, Path(config.update_keyring) if config.update_keyring else None,
                   config.update_compatible, config.bundle_max_mb * 1024 * 1024)

    def close(self) -> None:
        self._worker.shutdown(wait=False, cancel_futures=True)

    # -- what rollout and the download use -----------------------------------------------
    async def get(self, bundle_id: int) -> BundleInfo | None:
        row = await self.store.get(bundle_id)
        return self._info(row) if row and self.directory else None

    async def list(self) -> list[BundleInfo]:
        """Newest first."""
        return [self._info(r) for r in await self.store.all()] if self.directory else []

    def _info(self, row: BundleRow) -> BundleInfo:
        assert self.directory is not None
        return BundleInfo(row.id, row.version, row.compatible, row.size_bytes, row.sha256, row.signer,
                          row.signed_at, row.uploaded_at, row.uploaded_by, self.directory / f"{row.sha256}.raucb")

    # -- taking bundles in -------------------------------------------------------------------
    def problem(self) -> str | None:
        """Why central cannot take bundles as configured, or None."""
        if self.keyring is None:
            return ("central has no update keyring: set update_keyring in its settings to the CA certificate "
                    "file that signs the bundles (docs/updates.md); until then every bundle is refused")
        if self.directory is None:
            return "central has no directory for bundle files: set bundle_dir in its settings"
        return None

    def receive(self) -> Receiving:
        """A new file arriving piece by piece (an upload); call ``finish`` or ``discard``."""
        if (problem := self.problem()) is not None:
            raise BundleUnavailable(problem)
        try:
            return Receiving(self)
        except OSError as exc:
            raise BundleUnavailable(f"central cannot write into its bundle directory {self.directory} "
                                    f"({exc.strerror or exc}); give it a writable one with bundle_dir") from None

    async def add_file(self, source: Path, uploaded_by: str = COMMAND_LINE) -> BundleInfo:
        """Copy ``source`` in, check it and store it (the command line's ``bundles add``)."""
        receiving = self.receive()
        try:
            f = await asyncio.to_thread(open, source, "rb")
            with f:
                while chunk := await asyncio.to_thread(f.read, COPY_CHUNK):
                    await receiving.write(chunk)
        except OSError as exc:
            await receiving.discard()
            raise BundleUnavailable(f"cannot read {source}: {exc.strerror or exc}") from None
        except BaseException:
            await receiving.discard()
            raise
        return await receiving.finish(uploaded_by)

    async def _store(self, part: Path, size: int, sha256: str, uploaded_by: str) -> BundleInfo:
        """Check the arrived file ``part`` and keep it; it is gone afterwards either way."""
        try:
            if (there := await self.store.by_sha256(sha256)) is not None:
                raise BundleUnavailable(f"this bundle is already there, as bundle {there.id} (version {there.version})")
            async with self._checking:
                loop = asyncio.get_running_loop()
                checked = await loop.run_in_executor(self._worker, check_bundle, part, self.keyring, self.compatible)
            final = self.directory / f"{sha256}.raucb"
            await asyncio.to_thread(os.replace, part, final)
            try:
                bundle_id = await self.store.add(
                    version=checked.manifest.version, compatible=checked.manifest.compatible, size_bytes=size,
                    sha256=sha256, signer=checked.signer, signed_at=checked.signed_at.timestamp(),
                    uploaded_at=time.time(), uploaded_by=uploaded_by)
            except sa.exc.IntegrityError:  # the same file, arrived at the same time through another way
                raise BundleUnavailable("this bundle is already there") from None
            log.info("bundle %d stored (version %s, %d bytes)", bundle_id, checked.manifest.version, size)
            return await self.get(bundle_id)
        finally:
            with contextlib.suppress(FileNotFoundError):
                await asyncio.to_thread(part.unlink)

    async def remove(self, bundle_id: int) -> BundleInfo:
        """Delete the bundle and its file. Raises BundleUnavailable if unknown or still in use."""
        info = await self.get(bundle_id)
        if info is None:
            raise BundleUnavailable(f"there is no bundle {bundle_id}")
        for guard in self.removal_guards:
            if (reason := await guard(bundle_id)) is not None:
                raise BundleUnavailable(f"bundle {bundle_id} is in use: {reason}")
        await self.store.remove(bundle_id)
        with contextlib.suppress(FileNotFoundError):
            await asyncio.to_thread(info.file.unlink)
        return info

    def clean_up(self) -> None:
        """Remove pieces of uploads a crash left behind (older than a day, so none still arriving)."""
        if self.directory is None or not self.directory.is_dir():
            return
        for part in self.directory.glob(f".*{PART_SUFFIX}"):
            with contextlib.suppress(OSError):
                if part.stat().st_mtime < time.time() - STALE_PART_S:
                    part.unlink()


class Receiving:
    """A bundle file arriving: written to a hidden part file beside the bundles, hashed as it comes,
    refused as soon as it is larger than the cap."""

    def __init__(self, library: BundleLibrary):
        self.library = library
        directory = library.directory
        assert directory is not None
        directory.mkdir(parents=True, exist_ok=True)
        self.part = directory / f".{secrets.token_hex(8)}{PART_SUFFIX}"
        self._file = open(self.part, "xb")  # noqa: SIM115 - closed in finish/discard
        self._hash = hashlib.sha256()
        self.size = 0

    async def write(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.library.max_bytes:
            await self.discard()
            raise BundleRefused("bundle_corrupt", f"the file is larger than central takes "
                                f"({self.library.max_bytes // (1024 * 1024)} MB, bundle_max_mb in its settings)")
        await asyncio.to_thread(self._write, chunk)

    def _write(self, chunk: bytes) -> None:
        self._hash.update(chunk)
        self._file.write(chunk)

    async def finish(self, uploaded_by: str) -> BundleInfo:
        """Check and keep the file; raises BundleRefused / BundleUnavailable (nothing is kept then)."""
        await asyncio.to_thread(self._file.close)
        return await self.library._store(self.part, self.size, self._hash.hexdigest(), uploaded_by)

    async def discard(self) -> None:
        self._file.close()
        with contextlib.suppress(FileNotFoundError):
            await asyncio.to_thread(self.part.unlink)


def _lower_priority() -> None:
    try:  # Linux: a thread is a task with its own niceness
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), WORKER_NICENESS)
    except (AttributeError, OSError):
        pass


__all__ = ["BundleInfo", "BundleLibrary", "BundleRefused", "BundleUnavailable"]
