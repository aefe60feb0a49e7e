"""The image's bases checked against archives without building (image/build/check-base.py, ``./build.sh
image-check``): the Raspberry Pi OS base, whose archive these machines cannot reach, against archives this
test writes in the published format (https://wiki.debian.org/DebianRepository/Format): an InRelease
clear-signed with the archive's own key (real gpg), the SHA-256 of each Packages.xz in it, Packages
stanzas with Depends and Provides. The base's sources and package list come from base-*.sh as the build
takes them, so the test follows any change to packages.txt or the bases."""
from __future__ import annotations

import hashlib
import importlib.util
import lzma
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BUILD = REPO / "image" / "build"
CHECK = BUILD / "check-base.py"

pytestmark = pytest.mark.skipif(not (shutil.which("gpg") and shutil.which("gpgv")),
                                reason="gpg and gpgv are needed to sign and check archives (apt-get install gpg)")

# What the Raspberry Pi archive adds, with dependencies of its own (names as in its trixie suite).
RPI_ARCHIVE = {
    "raspberrypi-archive-keyring": "",
    "linux-image-rpi-v8": "kmod, linux-base (>= 4.3~)",
    "linux-image-rpi-2712": "kmod, linux-base (>= 4.3~)",
    "python3-picamera2": "python3-libcamera, python3-kms++, python3-numpy (>= 1:1.20), python3:any",
    "python3-kms++": "libkms++0 (= 0~git20231115)",
    "libkms++0": "libc6 (>= 2.34)",
    "python3-gpiozero": "python3-colorzero, python3:any",
    "python3-lgpio": "liblgpio1 (>= 0.2.2)",
    "liblgpio1": "libc6 (>= 2.34)",
}
# Debian's side: every package of packages.txt (written from the list), and these dependencies.
DEBIAN_EXTRA = {"libc6": "", "linux-base": "", "python3-cryptography": "libc6 (>= 2.34)",
                "python3-minimal": ""}
DEBIAN_DEPENDS = {"python3-aiortc": "python3-av (>= 11), python3-cryptography | python3-openssl, python3:any",
                  "python3": "python3-minimal (= 3.13.5-1)"}


def listed_packages() -> list[str]:
    lines = (line.split("#", 1)[0].strip() for line in (BUILD / "packages.txt").read_text().splitlines())
    return [line for line in lines if line]


class Keys:
    """Signing keys made for the test: Debian's, the Raspberry Pi archive's and a stranger's."""

    def __init__(self, where: Path):
        # gpg-agent's socket path must stay short: a home of its own under /tmp.
        self.home = Path(tempfile.mkdtemp(prefix="gpg-", dir="/tmp"))
        self.files = {}
        for name in ("debian", "raspberrypi", "stranger"):
            self.gpg("--quick-gen-key", f"{name} archive test <{name}@archive.test>", "ed25519", "sign", "never")
            self.files[name] = where / f"{name}.gpg"
            self.files[name].write_bytes(self.gpg("--export", f"{name}@archive.test").stdout)

    def gpg(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["gpg", "--homedir", str(self.home), "--batch", "--yes", "--passphrase", "",
                               "--pinentry-mode", "loopback", *args], check=True, capture_output=True)

    def close(self):
        subprocess.run(["gpgconf", "--homedir", str(self.home), "--kill", "gpg-agent"], capture_output=True)
        shutil.rmtree(self.home, ignore_errors=True)


def stanza(name: str, depends: str) -> str:
    return (f"Package: {name}\nVersion: 1.0-1\nArchitecture: arm64\nMaintainer: Test <t@archive.test>\n"
            + (f"Depends: {depends}\n" if depends else "") + f"Filename: pool/main/{name[0]}/{name}/{name}_1.0-1_arm64.deb\n"
            f"Size: 1000\nSHA256: {'0' * 64}\nDescription: {name} for the test\n")


def write_archive(root: Path, suite: str, packages: dict[str, str], keys: Keys, key: str, *,
                  suite_name: str | None = None, components: tuple[str, ...] = ("main",),
                  architectures: str = "amd64 arm64", component_prefix: str = "") -> Path:
    """One suite of an archive: every package in component ``main``, other components empty.
    ``component_prefix``: how Debian's security archive lists them ("updates/main"; the paths say "main")."""
    dists = root / "dists" / suite
    sums = []
    for component in components:
        text = "\n".join(stanza(n, d) for n, d in packages.items()) if component == "main" else ""
        index = lzma.compress(text.encode())
        path = f"{component}/binary-arm64/Packages.xz"
        (dists / path).parent.mkdir(parents=True, exist_ok=True)
        (dists / path).write_bytes(index)
        sums.append(f" {hashlib.sha256(index).hexdigest()} {len(index)} {path}")
    release = dists / "Release"
    release.write_text(f"Origin: Test\nLabel: Test\nSuite: {suite_name or suite}\nCodename: {suite}\n"
                       f"Date: Sat, 01 Nov 2025 09:00:00 UTC\nArchitectures: {architectures}\n"
                       f"Components: {' '.join(component_prefix + c for c in components)}\nSHA256:\n" + "\n".join(sums) + "\n")
    keys.gpg("--local-user", f"{key}@archive.test", "--clearsign", "-o", str(dists / "InRelease"), str(release))
    return dists


class Archives:
    """Debian's archive (trixie, -updates, -security) and the Raspberry Pi archive, as files."""

    def __init__(self, root: Path, keys: Keys):
        self.root, self.keys = root, keys
        self.debian = {**dict.fromkeys(listed_packages(), ""), **DEBIAN_EXTRA, **DEBIAN_DEPENDS}
        self.rpi = dict(RPI_ARCHIVE)
        self.rpi_key = "raspberrypi"

    def write(self) -> None:
        shutil.rmtree(self.root / "debian", ignore_errors=True)
        shutil.rmtree(self.root / "raspberrypi", ignore_errors=True)
        components = ("main", "non-free-firmware")
        write_archive(self.root / "debian", "trixie", self.debian, self.keys, "debian", suite_name="stable",
                      components=("main", "contrib", "non-free", "non-free-firmware"))
        write_archive(self.root / "debian", "trixie-updates", {}, self.keys, "debian", components=components)
        write_archive(self.root / "debian-security", "trixie-security", {"libc6": ""}, self.keys, "debian",
                      components=components, component_prefix="updates/")
        write_archive(self.root / "raspberrypi", "trixie", self.rpi, self.keys, self.rpi_key)

    def env(self, **more: str) -> dict[str, str]:
        return {**os.environ, "AMTSKLINGEL_MIRROR": f"file://{self.root}/debian",
                "AMTSKLINGEL_SECURITY_MIRROR": f"file://{self.root}/debian-security",
                "AMTSKLINGEL_RASPIOS_MIRROR": f"file://{self.root}/raspberrypi",
                "AMTSKLINGEL_DEBIAN_KEYRING": str(self.keys.files["debian"]),
                "AMTSKLINGEL_RASPIOS_KEYRING": str(self.keys.files["raspberrypi"]), **more}

    def check(self, base: str = "raspios", **env: str) -> subprocess.CompletedProcess:
        self.write()
        return subprocess.run(["/usr/bin/python3", str(CHECK), base], capture_output=True, text=True,
                              env=self.env(**env), timeout=120)


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    made = Keys(tmp_path_factory.mktemp("keys"))
    yield made
    made.close()


@pytest.fixture
def archives(tmp_path, keys):
    return Archives(tmp_path, keys)


def test_the_raspberry_pi_os_base_checks_out_against_its_archives(archives):
    done = archives.check("raspios")
    assert done.returncode == 0, done.stderr
    listed = len(listed_packages()) - 2 + 6  # linux-image-arm64 and python3-colorzero out, the Pi's six in
    assert f"base raspios: {listed} packages and what they depend on are in its archives" in done.stdout
    rpi_line = next(line for line in done.stdout.splitlines() if "/raspberrypi:" in line)
    assert ("6 listed packages (linux-image-rpi-2712, linux-image-rpi-v8, python3-gpiozero, python3-lgpio, "
            "python3-picamera2, raspberrypi-archive-keyring)") in rpi_line


def test_the_debian_base_needs_no_raspberry_pi_archive(archives):
    archives.rpi = {}  # not even reachable
    done = archives.check("debian", AMTSKLINGEL_RASPIOS_KEYRING="/nonexistent")
    assert done.returncode == 0, done.stderr
    assert f"base debian: {len(listed_packages())} packages" in done.stdout


def _check_base():
    spec = importlib.util.spec_from_file_location("check_base", CHECK)
    module = importlib.util.module_from_spec(spec)
    sys.modules["check_base"] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_the_raspberry_pi_os_base_is_the_debian_base_plus_its_archive(archives, monkeypatch):
    for name, value in archives.env().items():
        if name.startswith("AMTSKLINGEL_"):
            monkeypatch.setenv(name, value)
    check_base = _check_base()
    debian_sources, debian_packages = check_base.base_settings("debian")
    raspios_sources, raspios_packages = check_base.base_settings("raspios")
    assert raspios_sources[:-1] == debian_sources  # Debian's archive, suite, components and key: shared
    assert raspios_sources[-1] == (f"deb [signed-by={archives.keys.files['raspberrypi']}] "
                                   f"file://{archives.root}/raspberrypi trixie main")
    assert set(debian_packages) - set(raspios_packages) == {"linux-image-arm64", "python3-colorzero"}
    assert set(raspios_packages) - set(debian_packages) == set(RPI_ARCHIVE) - {"python3-kms++", "libkms++0",
                                                                                "liblgpio1"}


def _drop(archives, name):
    del archives.rpi[name]


def _sign_with_the_strangers_key(archives):
    archives.rpi_key = "stranger"


@pytest.mark.parametrize(("change", "env", "said"), [
    (lambda a: _drop(a, "python3-picamera2"), {},
     "not in any of its archives (file://{root}/debian trixie main non-free-firmware; "),
    (lambda a: _drop(a, "libkms++0"), {}, "libkms++0 (needed by python3-kms++)"),
    (_sign_with_the_strangers_key, {},
     "the release file of file://{root}/raspberrypi trixie is not signed by the key {keys}/raspberrypi.gpg"),
    (None, {"AMTSKLINGEL_SUITE": "bookworm"}, "cannot fetch file://{root}/debian/dists/bookworm/InRelease"),
    (None, {"AMTSKLINGEL_RASPIOS_KEYRING": "/nonexistent/raspberrypi-archive-keyring.gpg"},
     "archive key /nonexistent/raspberrypi-archive-keyring.gpg missing (set AMTSKLINGEL_RASPIOS_KEYRING)"),
], ids=["package-missing", "dependency-missing", "wrong-key", "no-such-suite", "no-key"])
def test_what_is_wrong_with_the_raspberry_pi_os_base_is_named(archives, change, env, said):
    if change is not None:
        change(archives)
    done = archives.check("raspios", **env)
    assert done.returncode == 1 and done.stdout == ""
    assert said.format(root=archives.root, keys=archives.keys.files["raspberrypi"].parent) in done.stderr


def test_a_packages_index_changed_after_signing_is_refused(archives, keys):
    archives.write()
    index = archives.root / "raspberrypi/dists/trixie/main/binary-arm64/Packages.xz"
    extra = lzma.decompress(index.read_bytes()).decode() + "\n" + stanza("python3-evil", "")
    index.write_bytes(lzma.compress(extra.encode()))
    done = subprocess.run(["/usr/bin/python3", str(CHECK), "raspios"], capture_output=True, text=True,
                          env=archives.env())
    assert done.returncode == 1
    assert "main/binary-arm64/Packages.xz does not match the SHA-256 its signed release gives" in done.stderr


def test_an_archive_without_arm64_is_refused(archives, keys):
    archives.write()
    write_archive(archives.root / "raspberrypi", "trixie", archives.rpi, keys, "raspberrypi", architectures="armhf")
    done = subprocess.run(["/usr/bin/python3", str(CHECK), "raspios"], capture_output=True, text=True,
                          env=archives.env())
    assert done.returncode == 1 and "the archive has no arm64 packages (architectures: armhf)" in done.stderr
