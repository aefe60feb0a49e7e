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
    file: Path = Path("/nonexistent/bundle.raucb")

    @property
    def path(self) -> str:
        return f"/updates/bundles/{self.id}/amtsklingel-{self.version}.raucb"


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


def install_bundles(app, bundles: Bundles) -> None:  # noqa: ANN001 - a started web.Application
    """Give a running central these bundles as its ``app["bundles"]`` (set once it started; aiohttp warns)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        app["bundles"] = bundles
