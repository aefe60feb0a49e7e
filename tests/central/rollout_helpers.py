"""Bundles for the rollout tests (a stand-in, and rows in central's bundle table) and the kiosk's update reports."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

OLD, NEW = "0.3.0+old", "0.4.0+new"


@dataclass(frozen=True)
class Bundle:
    """Shaped like central/updates/library.py's BundleInfo, as far as the rollout reads it."""

    id: int
    version: str
    size_bytes: int = 123_456_789
    sha256: str = "ab" * 32
    file: Path = Path("/nonexistent/bundle.raucb")

    @property
    def path(self) -> str:
        return f"/updates/bundles/{self.id}/amtsklingel-{self.version}.raucb"


def report(state: str, bundle_id: int = 7, version: str = NEW, running: str = OLD, **fields) -> dict:
    """An update.status as the kiosk's update agent sends it."""
    return {"type": "update.status", "bundle_id": bundle_id, "version": version, "state": state,
            "running_version": running, **fields}



async def add_bundle(db, version: str, size_bytes: int = 123_456_789) -> int:  # noqa: ANN001 - a Database
    """A bundle in central's bundle table, as the library lists it after its checks (no file behind it:
    the rollout never reads the file; the download tests do, with real bundles)."""
    return await db.bundles.add(version=version, compatible="amtsklingel-rpi-arm64", size_bytes=size_bytes,
                                sha256=hashlib.sha256(version.encode()).hexdigest(), signer="CN=Test City",
                                signed_at=1.0e9, uploaded_at=1.0e9, uploaded_by="admin")
