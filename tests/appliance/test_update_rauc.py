"""The rauc backend: RAUC 1.13's messages become the protocol's faults, its JSON status is read, and
the command line is driven as the real one (a stand-in ``rauc`` script that answers as RAUC does)."""
from __future__ import annotations

import json
import os

import pytest

from appliance.update.rauc import RaucSlots, fault_for, parse_status
from appliance.update.slots import InstallFailed, SlotBusy, SlotError

# Messages as RAUC 1.13 prints them (src/signature.c, bundle.c, nbd.c, install.c)
MESSAGES = [
    ("Installing `http://127.0.0.1:4711/a.raucb` failed: signature verification failed: Verify error:self-signed "
     "certificate", "signature_invalid"),
    ("Failed to verify X509 cert: unable to get local issuer certificate", "signature_invalid"),
    ("Failed to verify X509 cert: certificate has expired", "signature_invalid"),
    ("Compatible mismatch: Expected 'amtsklingel-rpi-arm64' but bundle manifest has 'other'", "incompatible"),
    ("Verification of root hash failed.", "bundle_corrupt"),
    ("Check read from dm-verity device failed: Input/output error", "bundle_corrupt"),
    ("Invalid hash for verity bundle", "bundle_corrupt"),
    ("Failed to stream bundle http://127.0.0.1:4711/a.raucb: received http error 502", "download_failed"),
    ("range requests not supported by server", "download_failed"),
    ("Installing `http://127.0.0.1:4711/a.raucb` failed: failed to configure streaming: unexpected HTTP error code "
     "502", "download_failed"),  # src/nbd.c: the loopback server said central failed
    ("unauthorized: unexpected HTTP error code 401", "download_failed"),
    ("not found: unexpected HTTP error code 404", "download_failed"),
    ("Slot device '/dev/disk/by-partlabel/rootfs-b' not found", "install_failed"),
    ("Slot (2147483648 bytes) is too small for image (4294967296 bytes).", "install_failed"),
    ("Failed to mount slot rootfs.1: busy", "install_failed"),
]


@pytest.mark.parametrize(("message", "fault"), MESSAGES)
def test_raucs_messages_become_faults(message, fault):
    assert fault_for(message) == fault


STATUS = {
    "compatible": "amtsklingel-rpi-arm64", "variant": "", "booted": "B", "boot_primary": "rootfs.1",
    "slots": [
        {"rootfs.0": {"class": "rootfs", "device": "/dev/disk/by-partlabel/rootfs-a", "type": "ext4",
                      "bootname": "A", "state": "inactive", "parent": None, "mountpoint": None, "boot_status": "bad",
                      "slot_status": {"bundle": {"compatible": "amtsklingel-rpi-arm64"}, "status": "ok"}}},
        {"rootfs.1": {"class": "rootfs", "device": "/dev/disk/by-partlabel/rootfs-b", "type": "ext4",
                      "bootname": "B", "state": "booted", "parent": None, "mountpoint": "/", "boot_status": "good",
                      "slot_status": {"bundle": {"compatible": "amtsklingel-rpi-arm64", "version": "0.2.0+abc"},
                                      "status": "ok"}}},
    ],
}


def test_status_json_is_read():
    status = parse_status(STATUS)
    assert (status.booted, status.primary, status.other, status.booted_version) == ("B", "B", "A", "0.2.0+abc")
    assert status.slots["A"].good is False and status.slots["A"].version is None


@pytest.fixture
def rauc(tmp_path):
    """A stand-in rauc: records its arguments, answers status with STATUS, installs as told by $FAKE_RAUC."""
    calls = tmp_path / "calls"
    (tmp_path / "status.json").write_text(json.dumps(STATUS))
    script = tmp_path / "rauc"
    script.write_text(f"""#!/bin/sh
echo "$@" >> {calls}
case "$1 $2" in
  "status --output-format=json") [ -e {tmp_path / "busy"} ] && {{ echo "Failed to retrieve slot states via \
D-Bus: already processing a different method" >&2; exit 1; }}; cat {tmp_path / "status.json"} ;;
  "status mark-good"|"status mark-bad") [ -e {tmp_path / "dbus-denied"} ] && {{ echo "rauc mark: \
GDBus.Error:org.freedesktop.DBus.Error.AccessDenied" >&2; exit 1; }}; echo "marked slot" ;;
  install*)
    printf '  0%% Installing\\n 20%% Checking bundle\\n'
    if [ -e {tmp_path / "bad-signature"} ]; then
      printf '%s\\n' "Installing \\`$2\\` failed: signature verification failed: Verify error:self-signed certificate"
      exit 1
    fi
    printf ' 80%% Copying image to rootfs.1\\n100%% Installing done.\\n' ;;
esac
""")
    script.chmod(0o755)
    return tmp_path, RaucSlots(str(script), boot_id_file=tmp_path / "boot_id")


async def test_the_command_line_is_driven_as_raucs(rauc):
    where, slots = rauc
    progress = []
    await slots.install("http://127.0.0.1:4711/b.raucb", progress.append)
    assert progress == [0, 20, 80, 100]
    assert (await slots.status()).booted == "B"
    await slots.mark_good("booted")
    await slots.mark_bad("other")
    assert (where / "calls").read_text().splitlines() == [
        "install http://127.0.0.1:4711/b.raucb", "status --output-format=json", "status mark-good booted",
        "status mark-bad other"]
    (where / "boot_id").write_text("3b0e\n")
    assert slots.boot_id() == "3b0e"


async def test_a_refused_bundle_and_a_refused_call_are_clear(rauc):
    where, slots = rauc
    (where / "bad-signature").touch()
    with pytest.raises(InstallFailed) as refused:
        await slots.install("http://127.0.0.1:4711/b.raucb", lambda pct: None)
    assert refused.value.fault == "signature_invalid"
    (where / "dbus-denied").touch()
    with pytest.raises(SlotError, match="D-Bus policy"):
        await slots.mark_good()
    assert os.access(where / "rauc", os.X_OK)


async def test_rauc_busy_with_an_installation_is_told_apart(rauc):
    where, slots = rauc
    (where / "busy").touch()
    with pytest.raises(SlotBusy, match="busy with an installation"):
        await slots.status()
