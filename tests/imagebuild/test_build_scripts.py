"""image/build/: the image build's scripts, checked without building an image.

The build itself (``./build.sh image``, 15-40 min) and its boot test (``./build.sh image-test``)
are too slow for every test run; these catch what can be caught in a second.
"""
from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BUILD = REPO / "image" / "build"
SCRIPTS = sorted(BUILD.glob("*.sh")) + sorted((BUILD / "hooks").glob("*.sh"))
SOURCED = {"lib.sh", "town-hall.sh", "base-debian.sh", "base-raspios.sh"}  # read with ".", never run


SELFTEST_MODULES = ("checklog", "system_checks", "kiosk_checks", "enrolment_checks")


def _selftest(name: str = "selftest"):
    """A fresh copy of the guest's self-test (or one of its modules), importable as in the image,
    where its modules sit side by side."""
    if str(BUILD / "selftest") not in sys.path:
        sys.path.insert(0, str(BUILD / "selftest"))
    for module in SELFTEST_MODULES:
        sys.modules.pop(module, None)
    if name != "selftest":
        return importlib.import_module(name)
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


def _generate(tmp_path: Path, cmdline: str | None) -> set[str]:
    env = {**os.environ}
    env.pop("SYSTEMD_PROC_CMDLINE", None)
    if cmdline is not None:
        env["SYSTEMD_PROC_CMDLINE"] = cmdline
    subprocess.run(["sh", str(BUILD / "selftest" / "amtsklingel-selftest-generator"), str(tmp_path)], check=True,
                   env=env)
    return {p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_symlink()}


def test_selftest_generator_is_inert_without_its_flag(tmp_path):
    """On a unit in the field (no amtsklingel.selftest=) the generator adds nothing."""
    assert "amtsklingel.selftest=" not in Path("/proc/cmdline").read_text()
    assert _generate(tmp_path, None) == set()
    assert _generate(tmp_path, "console=tty1 root=PARTUUID=x ro amtsklingel.selftest=0 panic=10") == set()
    assert list(tmp_path.iterdir()) == []


def test_selftest_generator_adds_the_self_test(tmp_path):
    assert _generate(tmp_path, "console=ttyAMA0 ro amtsklingel.selftest=1") == {
        "amtsklingel-selftest.service", "multi-user.target.wants/amtsklingel-selftest.service"}


def test_selftest_generator_can_fail_a_boot_like_a_missing_partition(tmp_path):
    """amtsklingel.selftest=emergency: local-fs.target requires a unit that fails, after the boot
    was counted, so the boot test sees emergency mode reboot and the count rise."""
    assert _generate(tmp_path, "ro amtsklingel.selftest=emergency") == {
        "amtsklingel-selftest-emergency.service", "local-fs.target.requires/amtsklingel-selftest-emergency.service"}
    unit = (BUILD / "selftest" / "amtsklingel-selftest-emergency.service").read_text()
    assert "Before=local-fs.target" in unit and "After=amtsklingel-boot-count.service" in unit
    assert "exit 1" in unit


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
    system_checks = _selftest("system_checks")
    assert system_checks._sockets(str(tcp), tcp=True) == [("tcp 0.0.0.0:5355", "2")]
    assert system_checks._sockets(str(udp6), tcp=False) == []


def test_boot_partition_names_match_fstab():
    """assemble.sh names the GPT partitions the way image/config/fstab finds them."""
    assemble = (BUILD / "assemble.sh").read_text()
    fstab = (REPO / "image/config/fstab").read_text()
    assert "PARTLABEL=boot" in fstab and 'name="boot"' in assemble
    # The data partition is made at the first boot by systemd-repart, with the label fstab mounts.
    assert "PARTLABEL=data" in fstab
    assert "Label=data" in (REPO / "image/config/repart.d/50-amtsklingel-data.conf").read_text()
    assert 'name="rootfs-a"' in assemble and 'name="rootfs-b"' in assemble
    # The root slot is found by its partition's UUID, which the boot script reads from the table;
    # the image's own command line mounts it read-only.
    script = (REPO / "image/config/boot/boot.cmd").read_text()
    assert "part uuid ${devtype} ${devnum}:${amtsklingel_part} amtsklingel_partuuid" in script
    assert 'setenv bootargs "root=PARTUUID=${amtsklingel_partuuid} rauc.slot=${amtsklingel_slot} ' in script
    assert " ro " in assemble.split("BOOTARGS=", 1)[1].split("\n", 1)[0]


def _watch(tmp_path: Path, console: str, *, guest_runs: bool = True, timeout: int = 60) -> tuple[int, str, float]:
    """watch-console.sh on a console log, with a sleeping process standing in for QEMU."""
    log = tmp_path / "console.log"
    log.write_text(console)
    guest = subprocess.Popen(["sleep", "300" if guest_runs else "0"])
    if not guest_runs:
        guest.wait()
    started = time.monotonic()
    try:
        done = subprocess.run([str(BUILD / "watch-console.sh"), str(log), str(guest.pid), str(timeout)],
                              capture_output=True, text=True, env={**os.environ, "WATCH_INTERVAL": "0.2"}, timeout=90)
    finally:
        guest.kill()
        guest.wait()
    return done.returncode, done.stdout, time.monotonic() - started


@pytest.mark.parametrize("line", [
    "[   40.1] systemd[1]: Dependency failed for local-fs.target - Local File Systems.\n"
    "You are in emergency mode. After logging in, type \"journalctl -xb\" to view system logs\n"
    "Cannot open access to console, the root account is locked.\n",
    "AMTSKLINGEL-EMERGENCY emergency: The kiosk could not start; restarting in 15 s.\n",
    "[    9.9] Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0)\n",
    "Gave up waiting for root file system device.\nALERT!  PARTUUID=x does not exist.  Dropping to a shell!\n",
    "[  264.4] watchdog: BUG: soft lockup - CPU#1 stuck for 67s! [modprobe:277]\n"
    "[  316.4] watchdog: BUG: soft lockup - CPU#0 stuck for 180s! [modprobe:277]\n",
])
def test_the_boot_test_stops_at_emergency_mode_or_a_panic(tmp_path, line):
    """Not after its 1,200 s timeout: at once, naming the console line."""
    code, out, took = _watch(tmp_path, "[    1.0] Booting Linux\n" + line, timeout=60)
    assert code == 11 and took < 10, (code, out)
    assert "emergency mode or panic" in out


def test_the_boot_test_stops_soon_after_the_first_fail(tmp_path):
    console = ("AMTSKLINGEL-SELFTEST START\nAMTSKLINGEL-SELFTEST FAIL system-running: degraded\n"
               "AMTSKLINGEL-SELFTEST DIAG begin\n--- failed units\nvar-lib-amtsklingel.mount failed\n"
               "AMTSKLINGEL-SELFTEST DIAG end\nAMTSKLINGEL-SELFTEST DONE 0 passed, 1 failed\n")
    code, out, took = _watch(tmp_path, console, guest_runs=False, timeout=60)
    assert code == 10 and took < 10, (code, out)
    assert "a check failed: system-running: degraded" in out


def test_the_boot_test_reports_a_guest_that_ended_early_and_a_pass(tmp_path):
    # A short stall on a busy host is no verdict; the guest ending without DONE is.
    code, out, _ = _watch(tmp_path, "[   88.4] watchdog: BUG: soft lockup - CPU#1 stuck for 22s! [modprobe:275]\n"
                                    "[  150.1] watchdog: BUG: soft lockup - CPU#1 stuck for 179s! [modprobe:275]\n"
                                    "reboot: Restarting system\n", guest_runs=False)
    assert code == 12, out
    code, out, _ = _watch(tmp_path, "AMTSKLINGEL-SELFTEST PASS root-read-only: ro\n"
                                    "AMTSKLINGEL-SELFTEST DONE 1 passed, 0 failed\n", guest_runs=False)
    assert code == 0 and "[+0s] AMTSKLINGEL-SELFTEST PASS root-read-only: ro" in out, out


def test_the_self_test_stops_at_its_first_failure(monkeypatch, capsys):
    """Later checks would wait minutes for what cannot come; the first failure gets a diagnosis."""
    selftest = _selftest()
    called = []
    monkeypatch.setattr(selftest, "settings", lambda: {"APPLIANCE_UNIT": "amtsklingel-appliance.service"})
    monkeypatch.setattr(selftest, "_central_host", lambda: "central.test")
    monkeypatch.setattr(selftest, "boot_state", lambda: selftest.report("FAIL", "system-running", "degraded"))
    monkeypatch.setattr(selftest, "read_only_root", lambda: called.append("read_only_root"))
    monkeypatch.setattr(selftest, "diagnose", lambda: called.append("diagnose"))
    monkeypatch.setenv("AMTSKLINGEL_SELFTEST_NO_POWEROFF", "1")
    assert selftest.main() == 0
    assert called == ["diagnose"]
    assert "AMTSKLINGEL-SELFTEST DONE 0 passed, 1 failed" in capsys.readouterr().out
