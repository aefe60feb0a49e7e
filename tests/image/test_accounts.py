"""No password logins at all: the users the image gets, SSH, PAM and polkit."""
from __future__ import annotations

import re

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


def test_identity_files_get_their_modes(image_root):
    """systemd-tmpfiles applies the modes of systemd/amtsklingel.tmpfiles to the data partition."""
    data = image_root.path / DATA
    (data / "ssh").mkdir(parents=True, exist_ok=True)
    (data / "network").mkdir(parents=True, exist_ok=True)
    for name in ("kiosk-token", "appliance.toml", "ssh/authorized_keys", "ssh/ssh_host_ed25519_key",
                 "network/20-amtsklingel-wired.network"):
        (data / name).write_text("x\n")
        (data / name).chmod(0o666)
    imageroot.run(imageroot.require("systemd-tmpfiles"), f"--root={image_root.path}", "--create", "amtsklingel.conf")
    groups = {name: int(fields[2]) for name, fields in _table(image_root.path / "etc/group").items()}
    # systemd-networkd (its own user) reads a provisioned fixed address: it may pass through the
    # data directory but not list it, and reads nothing else there.
    expected = {"": (0o751, "amtsklingel"), "kiosk-token": (0o640, "amtsklingel"),
                "appliance.toml": (0o640, "amtsklingel"), "ssh": (0o700, "root"),
                "ssh/authorized_keys": (0o600, "root"), "ssh/ssh_host_ed25519_key": (0o600, "root"),
                "network": (0o755, "root"), "network/20-amtsklingel-wired.network": (0o644, "root")}
    for name, (mode, group) in expected.items():
        st = (data / name).stat()
        assert (st.st_mode & 0o7777, st.st_uid, st.st_gid) == (mode, 0, groups[group]), name
