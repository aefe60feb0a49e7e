"""A stand-in for central's bundle store and the kiosk's update reports, for the rollout tests."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

OLD, NEW = "0.3.0+old", "0.4.0+new"


@dataclass(frozen=True)
class Bundle:
    """Shaped like central/storage/bundles.py's BundleInfo, as far as the rollout reads it."""

    id: int
    version: str
    size_bytes: int = 123_456_789
    sha256: str = "ab" * 32
    path: Path = Path("/nonexistent/bundle.raucb")


class Bundles:
    """``app["bundles"]`` as far as the rollout uses it: get(id) and list()."""

    def __init__(self, *bundles: Bundle):
        self.bundles = {b.id: b for b in bundles}

    def get(self, bundle_id: int) -> Bundle | None:
        return self.bundles.get(bundle_id)

    def list(self) -> list[Bundle]:
        return list(self.bundles.values())


def report(state: str, bundle_id: int = 7, version: str = NEW, running: str = OLD, **fields) -> dict:
    """An update.status as the kiosk's update agent sends it."""
    return {"type": "update.status", "bundle_id": bundle_id, "version": version, "state": state,
            "running_version": running, **fields}
