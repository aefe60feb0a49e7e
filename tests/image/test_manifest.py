"""image/config/MANIFEST: the build installs exactly these files, with sane modes."""
from __future__ import annotations

import subprocess

from tests.image import imageroot
from tests.image.imageroot import REPO

# Where executables may go, and what a mask points to.
PROGRAM_DIR = "/usr/lib/amtsklingel/"
MASK_DIRS = ("/etc/systemd/system/", "/etc/systemd/user/")


def test_every_entry_is_well_formed():
    for e in imageroot.manifest():
        where = f"MANIFEST:{e.line}"
        assert e.kind in ("file", "link", "dir"), where
        assert e.target.startswith("/") and "//" not in e.target and ".." not in e.target, where
        assert e.owner == "root:root", f"{where}: everything in the image is root's; services get their users from systemd"
        if e.kind == "file":
            assert (REPO / e.source).is_file(), f"{where}: {e.source} does not exist"
        if e.kind == "link":
            assert e.mode == "-", where
            assert e.source.startswith("/"), f"{where}: link targets are absolute"
        else:
            assert len(e.mode) == 4 and set(e.mode) <= set("01234567"), where


def test_targets_are_unique():
    targets = [e.target for e in imageroot.manifest()]
    assert len(targets) == len(set(targets)), sorted(t for t in targets if targets.count(t) > 1)


def test_every_file_of_ours_is_installed():
    """Nothing in systemd/, udev/ or image/config/ is forgotten by the build."""
    listed = {e.source for e in imageroot.manifest() if e.kind == "file"}
    assert imageroot.owned_files() == listed


def test_modes_are_sane():
    for e in imageroot.manifest():
        if e.kind != "file":
            continue
        mode = int(e.mode, 8)
        assert mode & 0o7022 == 0, f"{e.target}: {e.mode} is setuid/setgid/sticky or writable by others"
        if (REPO / e.source).read_text().startswith("#!"):
            assert e.target.startswith(PROGRAM_DIR) and e.mode == "0755", f"{e.target}: a program, {e.mode}"
        else:
            assert e.mode == "0644", f"{e.target}: configuration is 0644, not {e.mode}"


def test_masks_point_to_dev_null():
    for e in imageroot.manifest():
        if e.kind == "link" and e.target.startswith(MASK_DIRS) and not e.target.endswith("default.target"):
            assert e.source == "/dev/null", e


def test_scripts_parse():
    for e in imageroot.manifest():
        if e.kind == "file" and e.mode == "0755":
            result = subprocess.run(["sh", "-n", str(REPO / e.source)], capture_output=True, text=True)
            assert result.returncode == 0, f"{e.source}: {result.stderr}"


def test_the_build_can_install_it(tmp_path):
    imageroot.install(imageroot.manifest(), tmp_path)
    assert (tmp_path / "usr/lib/amtsklingel/firstboot").stat().st_mode & 0o777 == 0o755
    assert (tmp_path / "etc/amtsklingel/appliance.toml").readlink().as_posix() == "/var/lib/amtsklingel/appliance.toml"
