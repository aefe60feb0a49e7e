"""No password logins at all: the users the image gets, SSH, PAM and polkit."""
from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path

import pytest

from tests.image import imageroot
from tests.image.imageroot import REPO

CONFIG = REPO / "image/config"
DATA = "var/lib/amtsklingel"


def _table(path) -> dict[str, list[str]]:
    return {line.split(":")[0]: line.split(":") for line in path.read_text().splitlines() if line}


@pytest.mark.parametrize("user", ["amtsklingel", "kiosk"])
def test_service_users_cannot_log_in(image_root, user):
    passwd = _table(image_root.path / "etc/passwd")[user]
    shadow = _table(image_root.path / "etc/shadow")[user]
    assert passwd[6] == "/usr/sbin/nologin"
    assert passwd[5] == "/nonexistent"
    assert 0 < int(passwd[2]) < 1000, "a system user"
    assert shadow[1] == "!*", "locked, and no password hash behind the lock"


def test_no_account_has_a_password_hash(image_root):
    for user, fields in _table(image_root.path / "etc/shadow").items():
        assert fields[1] in ("!*", "!", "*", "!!"), f"{user} has a password"


def test_gpio_group_exists(image_root):
    assert "gpio" in _table(image_root.path / "etc/group")


def test_nothing_we_ship_sets_a_password():
    hashes = re.compile(r"\$(1|2[aby]|5|6|y|gy|7)\$[./0-9A-Za-z]")
    commands = re.compile(r"\b(chpasswd|usermod\s+-p|passwd\s+-d|useradd\s+-p)\b")
    for name in imageroot.owned_files():
        text = (REPO / name).read_text()
        assert not hashes.search(text), f"{name} contains a password hash"
        assert not commands.search(text), f"{name} sets a password"


def _sshd() -> dict[str, str]:
    """sshd_config semantics: keywords are case-insensitive and the first value wins."""
    settings: dict[str, str] = {}
    for line in (CONFIG / "sshd.conf").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, value = line.split(None, 1)
            assert key.lower() != "match", "a Match block could re-enable something for some clients"
            settings.setdefault(key.lower(), value)
    return settings


def test_sshd_takes_keys_only():
    sshd = _sshd()
    assert sshd["passwordauthentication"] == "no"
    assert sshd["kbdinteractiveauthentication"] == "no"
    assert sshd["permitemptypasswords"] == "no"
    assert sshd["authenticationmethods"] == "publickey"
    assert sshd["permitrootlogin"] == "prohibit-password"
    assert sshd["authorizedkeysfile"] == "/var/lib/amtsklingel/ssh/authorized_keys"
    assert sshd["hostkey"] == "/var/lib/amtsklingel/ssh/ssh_host_ed25519_key"
    assert sshd["allowtcpforwarding"] == "no" and sshd["permittunnel"] == "no"


def test_sshd_runs_only_with_a_provisioned_key():
    dropin = (REPO / "systemd/ssh.service.d/amtsklingel.conf").read_text()
    assert "ConditionFileNotEmpty=/var/lib/amtsklingel/ssh/authorized_keys" in dropin
    preset = (REPO / "systemd/00-amtsklingel.preset").read_text()
    assert "disable ssh.socket" in preset


def test_kiosk_pam_stack_never_authenticates():
    lines = [line.split() for line in (CONFIG / "pam-kiosk").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    stack = {(kind, module) for kind, _control, module, *_ in lines}
    assert ("auth", "pam_deny.so") in stack and ("password", "pam_deny.so") in stack
    assert not [m for kind, m in stack if kind in ("auth", "password") and m != "pam_deny.so"]
    assert ("session", "pam_systemd.so") in stack


def test_polkit_says_no_to_the_kiosk_user():
    rules = (CONFIG / "polkit.rules").read_text()
    assert 'subject.user == "kiosk"' in rules and "polkit.Result.NO" in rules


def test_polkit_lets_the_appliance_reboot_and_nothing_else():
    """Central's "reboot" action runs systemctl reboot as the appliance's user (appliance/service/power.py)."""
    rules = (CONFIG / "polkit.rules").read_text()
    granted = re.findall(r'subject\.user == "amtsklingel"(.*?)polkit\.Result\.YES', rules, re.S)
    assert len(granted) == 1 and rules.count("polkit.Result.YES") == 1
    assert sorted(re.findall(r'action\.id == "([^"]+)"', granted[0])) == [
        "org.freedesktop.login1.reboot", "org.freedesktop.login1.reboot-multiple-sessions"]
    packages = (REPO / "image/build/packages.txt").read_text().split()
    assert "polkitd" in packages  # without it nobody but root may reboot, whatever the rules say


def _data_with_modes(root, *, with_files: bool = True):
    """The data partition's files (in ``root``) with the modes systemd-tmpfiles gives them."""
    data = root / DATA
    (data / "ssh").mkdir(parents=True, exist_ok=True)
    (data / "network").mkdir(parents=True, exist_ok=True)
    names = ("kiosk-token", "settings.json", "appliance.toml", "ssh/authorized_keys", "ssh/ssh_host_ed25519_key",
             "network/20-amtsklingel-wired.network") if with_files else ()
    for name in names:
        (data / name).write_text("x\n")
        (data / name).chmod(0o666)
    imageroot.run(imageroot.require("systemd-tmpfiles"), f"--root={root}", "--create", "amtsklingel.conf")
    return data


def _ids(root) -> dict[str, int]:
    users = {name: int(fields[2]) for name, fields in _table(root / "etc/passwd").items()}
    groups = {name: int(fields[2]) for name, fields in _table(root / "etc/group").items()}
    return {"root": 0, "amtsklingel": users["amtsklingel"], "group:amtsklingel": groups["amtsklingel"],
            "group:root": 0}


def test_identity_files_get_their_modes(image_root):
    """systemd-tmpfiles applies the modes of systemd/amtsklingel.tmpfiles to the data partition."""
    data = _data_with_modes(image_root.path)
    ids = _ids(image_root.path)
    # systemd-networkd (its own user) reads a provisioned fixed address: it may pass through the
    # data directory but not list it, and reads nothing else there. The appliance owns its token
    # and settings.json (it writes them); the rest is root's.
    expected = {"": (0o1771, "root", "amtsklingel"), "kiosk-token": (0o600, "amtsklingel", "amtsklingel"),
                "settings.json": (0o600, "amtsklingel", "amtsklingel"),
                "appliance.toml": (0o640, "root", "amtsklingel"), "ssh": (0o700, "root", "root"),
                "ssh/authorized_keys": (0o600, "root", "root"), "ssh/ssh_host_ed25519_key": (0o600, "root", "root"),
                "network": (0o755, "root", "root"), "network/20-amtsklingel-wired.network": (0o644, "root", "root")}
    for name, (mode, user, group) in expected.items():
        st = (data / name).stat()
        assert (st.st_mode & 0o7777, st.st_uid, st.st_gid) == (mode, ids[user], ids[f"group:{group}"]), name


# As the appliance's user: write the token and settings.json atomically (as enrolment and the
# settings do), then try to change what is root's. Prints what it tried and whether it was done.
AS_APPLIANCE = r"""
import os, sys
data = sys.argv[1]
def attempt(name, action):
    try:
        action()
        print(name, "done", sep="\t")
    except OSError:
        print(name, "refused", sep="\t")
def replace(target):
    tmp = os.path.join(data, f".{target}.new")
    with open(tmp, "w") as f:
        f.write("new\n")
    os.replace(tmp, os.path.join(data, target))
attempt("write kiosk-token", lambda: replace("kiosk-token"))
attempt("write settings.json", lambda: replace("settings.json"))
attempt("replace appliance.toml", lambda: replace("appliance.toml"))
attempt("remove appliance.toml", lambda: os.unlink(os.path.join(data, "appliance.toml")))
attempt("write appliance.toml", lambda: open(os.path.join(data, "appliance.toml"), "a").write("x"))
attempt("rename ssh", lambda: os.rename(os.path.join(data, "ssh"), os.path.join(data, "ssh.old")))
attempt("rename network", lambda: os.rename(os.path.join(data, "network"), os.path.join(data, "network.old")))
attempt("create ssh/authorized_keys", lambda: open(os.path.join(data, "ssh", "authorized_keys"), "w"))
"""


def test_the_appliance_writes_its_token_and_settings_and_nothing_of_roots():
    """Enrolment by code stores the token, central's settings go to settings.json; the appliance's
    user cannot replace the unit's appliance.toml, nor touch SSH or the network settings."""
    imageroot.require_root()
    # A root of its own in a directory the appliance's user can reach (pytest's are root's only).
    scratch = Path(tempfile.mkdtemp(prefix="amtsklingel-data-"))
    try:
        scratch.chmod(0o755)
        _as_the_appliance(scratch)
    finally:
        shutil.rmtree(scratch)


def _as_the_appliance(scratch: Path) -> None:
    root = imageroot.build_root(scratch / "root")
    imageroot.run(imageroot.require("systemd-sysusers"), f"--root={root.path}")
    data = _data_with_modes(root.path, with_files=False)
    (data / "kiosk-token").write_text("old\n")
    imageroot.run(imageroot.require("systemd-tmpfiles"), f"--root={root.path}", "--create", "amtsklingel.conf")
    ids = _ids(root.path)
    result = imageroot.run(imageroot.require("setpriv"), f"--reuid={ids['amtsklingel']}",
                           f"--regid={ids['group:amtsklingel']}", "--clear-groups", "/usr/bin/python3", "-c",
                           AS_APPLIANCE, str(data), check=False)
    outcome = dict(line.split("\t") for line in result.stdout.splitlines())
    assert outcome == {"write kiosk-token": "done", "write settings.json": "done",
                       "replace appliance.toml": "refused", "remove appliance.toml": "refused",
                       "write appliance.toml": "refused", "rename ssh": "refused", "rename network": "refused",
                       "create ssh/authorized_keys": "refused"}, result.stdout + result.stderr
    assert (data / "kiosk-token").read_text() == "new\n" and (data / "appliance.toml").read_text() == ""
