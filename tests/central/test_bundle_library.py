"""The bundle library's housekeeping: pieces of uploads a crash left behind."""
from __future__ import annotations

import os
import time

import pytest

from central.updates.library import STALE_PART_S, BundleLibrary, BundleUnavailable


def test_pieces_of_uploads_left_by_a_crash_are_removed_after_a_day(tmp_path):
    library = BundleLibrary(store=None, directory=tmp_path, keyring=None, compatible="x", max_bytes=1)
    try:
        old, arriving, bundle = tmp_path / ".0a1b.part", tmp_path / ".2c3d.part", tmp_path / f"{'e' * 64}.raucb"
        for path in (old, arriving, bundle):
            path.write_bytes(b"x")
        long_ago = time.time() - STALE_PART_S - 60
        os.utime(old, (long_ago, long_ago))
        os.utime(bundle, (long_ago, long_ago))
        library.clean_up()
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted([arriving.name, bundle.name])
    finally:
        library.close()


async def test_a_bundle_directory_central_cannot_write_is_named(tmp_path):
    (tmp_path / "a-file").write_text("not a directory")
    library = BundleLibrary(store=None, directory=tmp_path / "a-file" / "bundles", keyring=tmp_path / "keyring.pem",
                            compatible="x", max_bytes=1)
    try:
        with pytest.raises(BundleUnavailable, match="cannot write into its bundle directory .*a-file/bundles"):
            library.receive()
    finally:
        library.close()
