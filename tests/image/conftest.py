"""Fixtures of the image tests: the scratch root the offline systemd tools work on."""
from __future__ import annotations

import pytest

from tests.image import imageroot


@pytest.fixture(scope="session")
def image_root(tmp_path_factory) -> imageroot.ImageRoot:
    """A root with the MANIFEST installed and the users of sysusers.d created."""
    imageroot.require_root()
    root = imageroot.build_root(tmp_path_factory.mktemp("image") / "root")
    imageroot.run(imageroot.require("systemd-sysusers"), f"--root={root.path}")
    return root
