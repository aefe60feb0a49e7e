"""image/build/: the image build's scripts, checked without building an image.

The build itself (``./build.sh image``, 15-40 min) and its boot test (``./build.sh image-test``)
are too slow for every test run; these catch what can be caught in a second.
"""
from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BUILD = REPO / "image" / "build"
SCRIPTS = sorted(BUILD.glob("*.sh")) + sorted((BUILD / "hooks").glob("*.sh"))
SOURCED = {"lib.sh", "base-debian.sh", "base-raspios.sh"}  # read with ".", never run


def _selftest():
    spec = importlib.util.spec_from_file_location("image_selftest", BUILD / "selftest" / "selftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_scripts_parse_and_are_strict(script):
    subprocess.run(["bash", "-n", str(script)], check=True)
    if script.name in SOURCED:
        return
    assert "set -euo pipefail" in script.read_text(), f"{script.name}: no set -euo pipefail"
    assert os.access(script, os.X_OK), f"{script.name} is not executable"


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck not installed")
def test_shellcheck():
    subprocess.run(["shellcheck", "-x", "-S", "warning", *map(str, SCRIPTS)], check=True, cwd=BUILD)


def test_install_manifest_installs_every_entry(tmp_path):
    out = subprocess.run([str(BUILD / "install-manifest.sh"), "install", str(REPO), str(tmp_path)],
                         check=True, capture_output=True, text=True).stdout.split()
    entries = [line.split("#")[0].split() for line in (REPO / "image/config/MANIFEST").read_text().splitlines()]
    entries = [e for e in entries if e]
    assert sorted(out) == sorted(e[2] for e in entries)
    for kind, source, target, mode, _owner in entries:
        path = tmp_path / target.lstrip("/")
        if kind == "file":
            assert path.read_bytes() == (REPO / source).read_bytes(), target
            assert oct(path.stat().st_mode & 0o7777) == oct(int(mode, 8)), target
        elif kind == "link":
            assert os.readlink(path) == source, target
        else:
            assert path.is_dir() and oct(path.stat().st_mode & 0o7777) == oct(int(mode, 8)), target


def test_install_manifest_refuses_a_malformed_entry(tmp_path):
    manifest = tmp_path / "MANIFEST"
    manifest.write_text("file systemd/amtsklingel-appliance.service relative/path 0644 root:root\n")
    done = subprocess.run([str(BUILD / "install-manifest.sh"), "install", str(REPO), str(tmp_path / "root")],
                          capture_output=True, text=True, env={**os.environ, "AMTSKLINGEL_MANIFEST": str(manifest)})
    assert done.returncode != 0 and "not absolute" in done.stderr


def test_selftest_generator_is_inert_without_its_flag(tmp_path):
    """On a unit in the field (no amtsklingel.selftest=1) the generator adds nothing."""
    assert "amtsklingel.selftest=1" not in Path("/proc/cmdline").read_text()
    subprocess.run(["sh", str(BUILD / "selftest" / "amtsklingel-selftest-generator"), str(tmp_path)], check=True)
    assert list(tmp_path.iterdir()) == []


def test_selftest_sees_sockets_beyond_loopback(tmp_path):
    header = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
    tcp = tmp_path / "tcp"
    tcp.write_text(header
                   + "   0: 0100007F:1F40 00000000:0000 0A 00000000:00000000 00:00000000 00000000   987 0 1\n"  # 127.0.0.1:8000
                   + "   1: 00000000:14EB 00000000:0000 0A 00000000:00000000 00:00000000 00000000   991 0 2\n"  # 0.0.0.0:5355
                   + "   2: 0F02000A:D2F0 0100A8C0:01BB 01 00000000:00000000 00:00000000 00000000   987 0 3\n")  # a client
    udp6 = tmp_path / "udp6"
    udp6.write_text(header
                    + "   0: 00000000000000000000000001000000:0222 00000000000000000000000000000000:0000 07 "
                      "00000000:00000000 00:00000000 00000000 0 0 4\n")  # [::1]:546
    selftest = _selftest()
    assert selftest._sockets(str(tcp), tcp=True) == [("tcp 0.0.0.0:5355", "2")]
    assert selftest._sockets(str(udp6), tcp=False) == []


def test_boot_partition_names_match_fstab():
    """assemble.sh names the GPT partitions the way image/config/fstab finds them."""
    assemble = (BUILD / "assemble.sh").read_text()
    fstab = (REPO / "image/config/fstab").read_text()
    assert "PARTLABEL=boot" in fstab and 'name="boot"' in assemble
    # The data partition is made at the first boot by systemd-repart, with the label fstab mounts.
    assert "PARTLABEL=data" in fstab
    assert "Label=data" in (REPO / "image/config/repart.d/50-amtsklingel-data.conf").read_text()
    assert 'name="rootfs-a"' in assemble and 'name="rootfs-b"' in assemble
    assert "root=PARTUUID=$P_ROOTA" in assemble and " ro " in assemble.split("CMDLINE=", 1)[1].split("\n", 1)[0]
