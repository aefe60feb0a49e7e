"""``python -m central bundles add FILE | list | remove ID``, run as city IT runs it."""
from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from central.storage import Database
from tests.central.bundle_fixtures import changed, make

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    return make(tmp_path_factory.mktemp("cli"))


@pytest.fixture
def cli(tmp_path, made):
    config = tmp_path / "central.toml"
    config.write_text(f'database_url = "sqlite:///{tmp_path}/central.db"\nupdate_keyring = "{made.keys.ca_pem}"\n')

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "central", "--config", str(config), "bundles", *args],
                              cwd=ROOT, capture_output=True, text=True, timeout=120)
    run.tmp_path = tmp_path
    return run


def audit(tmp_path: Path) -> list[tuple[str, str]]:
    async def read():
        db = await Database.open(f"sqlite:///{tmp_path}/central.db")
        try:
            return [(e.action, e.target) for e in await db.audit.recent()]
        finally:
            await db.close()
    return asyncio.run(read())


def test_add_list_remove(cli, made):
    done = cli("add", str(made.good))
    assert done.returncode == 0, done.stderr
    assert "bundle 1 added: version 1.1.0+good" in done.stdout
    assert "/updates/bundles/1/amtsklingel-1.1.0+good.raucb" in done.stdout
    kept = cli.tmp_path / "bundles"
    assert [p.suffix for p in kept.iterdir()] == [".raucb"]
    listed = cli("list")
    assert listed.returncode == 0 and listed.stdout.startswith("1\t1.1.0+good\t")
    again = cli("add", str(made.good))
    assert again.returncode == 1 and "already there, as bundle 1" in again.stderr
    removed = cli("remove", "1")
    assert removed.returncode == 0 and "bundle 1 (version 1.1.0+good) removed" in removed.stdout
    assert list(kept.iterdir()) == [] and "no bundles yet" in cli("list").stdout
    assert cli("remove", "1").returncode == 1
    assert audit(cli.tmp_path) == [("bundle.remove", "bundle:1"), ("bundle.add", "bundle:1")]


def test_a_refused_bundle_says_why_and_leaves_nothing(cli, made, tmp_path):
    for bundle, fault in ((made.other_key, "signature_invalid"), (made.elsewhere, "incompatible")):
        done = cli("add", str(bundle))
        assert done.returncode == 1 and f"refused ({fault})" in done.stderr, done.stderr
    broken = tmp_path / "broken.raucb"
    broken.write_bytes(changed(made.good.read_bytes(), 5000))
    done = cli("add", str(broken))
    assert done.returncode == 1 and "refused (bundle_corrupt)" in done.stderr
    assert list((cli.tmp_path / "bundles").iterdir()) == []
    assert "no bundles yet" in cli("list").stdout


def test_without_a_keyring_every_bundle_is_refused_with_the_setting_named(tmp_path, made):
    config = tmp_path / "central.toml"
    config.write_text(f'database_url = "sqlite:///{tmp_path}/central.db"\n')
    done = subprocess.run([sys.executable, "-m", "central", "--config", str(config), "bundles", "add",
                           str(made.good)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "set update_keyring" in done.stderr
