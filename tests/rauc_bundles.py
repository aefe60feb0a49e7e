"""Throwaway update-signing keys and RAUC bundles made by the test, with the host's openssl and rauc.

The keys are made the way docs/updates.md tells city IT to make theirs (a CA, and a signing certificate
issued by it), only with short lives and in the test's own temporary directory: no key is ever committed.

    keys = make_keys(tmp_path)                       # keys.ca_pem is the keyring a unit carries
    bundle = make_bundle(tmp_path, keys, "0.2.0+abc1234")
    old = make_keys(tmp_path, "lapsed", valid_from=now - 10 days, days=1)   # already expired

The bundle is what `./build.sh bundle` makes: verity format, one image ``rootfs.ext4`` for the slot class
``rootfs`` with ``adaptive=block-hash-index``. Without ``root`` the ext4 holds a small stand-in root.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import NamedTuple

COMPATIBLE = "amtsklingel-rpi-arm64"
SLOT_CLASS = "rootfs"
IMAGE_NAME = "rootfs.ext4"


class Keys(NamedTuple):
    """Paths of PEM files: the CA certificate (the keyring), the signing certificate and its key."""
    ca_pem: Path
    cert_pem: Path
    key_pem: Path

    @property
    def ca_key_pem(self) -> Path:
        """The CA's private key (kept next to its certificate), to issue more signing certificates."""
        return self.ca_pem.with_suffix(".key")


def _run(*args: str | Path, cwd: Path | None = None) -> str:
    done = subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, args))} failed ({done.returncode}):\n{done.stderr}{done.stdout}")
    return done.stdout


def _openssl_time(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).strftime("%Y%m%d%H%M%SZ")


# `openssl ca` rather than `openssl req -x509`/`openssl x509 -req`: OpenSSL 3.0 (bookworm) can set a start
# date only there, and the clock tests need certificates that were valid in the past.
_CA_CONFIG = """\
[ca]
default_ca = update_ca

[update_ca]
database = {dir}/index.txt
new_certs_dir = {dir}
serial = {dir}/serial
default_md = sha256
policy = any_name
unique_subject = no
copy_extensions = none
preserve = yes

[any_name]
commonName = supplied
organizationName = optional

[authority]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash

[signing]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
"""


def _new_key_and_request(key_pem: Path, csr: Path, subject: str) -> None:
    _run("openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-noenc",
         "-keyout", key_pem, "-out", csr, "-subj", subject)


def _issue(directory: Path, csr: Path, out: Path, signer: list[str | Path], extensions: str,
           start: dt.datetime, end: dt.datetime) -> None:
    ca_dir = directory / f"{out.stem}.issue"
    ca_dir.mkdir(exist_ok=True)
    (ca_dir / "index.txt").write_text("")
    # A random positive serial of 16 hex digits (openssl wants an even count).
    (ca_dir / "serial").write_text(f"{int.from_bytes(os.urandom(8), 'big') >> 2 | 1 << 61:016X}\n")
    config = ca_dir / "ca.cnf"
    config.write_text(_CA_CONFIG.format(dir=ca_dir))
    _run("openssl", "ca", "-batch", "-notext", "-config", config, *signer, "-extensions", extensions,
         "-in", csr, "-out", out, "-startdate", _openssl_time(start), "-enddate", _openssl_time(end))
    shutil.rmtree(ca_dir)
    csr.unlink()


def make_ca(directory: Path, name: str = "city", days: int = 3650) -> Path:
    """A self-signed update CA ``<name>-ca.pem`` (key ``<name>-ca.key``), valid from a year ago for
    ``days`` from now (so certificates it issues may lie in the past); returns the certificate's path."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_pem, ca_key, csr = directory / f"{name}-ca.pem", directory / f"{name}-ca.key", directory / f"{name}-ca.csr"
    _new_key_and_request(ca_key, csr, f"/O=Amtsklingel test/CN={name} update CA")
    now = dt.datetime.now(dt.UTC)
    _issue(directory, csr, ca_pem, ["-selfsign", "-keyfile", ca_key], "authority",
           now - dt.timedelta(days=365), now + dt.timedelta(days=days))
    return ca_pem


def issue_signing_cert(directory: Path, ca_pem: Path, name: str, *, days: int = 3650,
                       valid_from: dt.datetime | None = None) -> tuple[Path, Path]:
    """A signing certificate and key ``<name>-signing.pem/.key`` issued by the CA at ``ca_pem``.

    Valid from ``valid_from`` (default: an hour ago; at most a year back) for ``days``: a start in the
    past with few days makes a certificate that has already expired.
    """
    start = valid_from or dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    cert_pem, key_pem = directory / f"{name}-signing.pem", directory / f"{name}-signing.key"
    csr = directory / f"{name}-signing.csr"
    _new_key_and_request(key_pem, csr, f"/O=Amtsklingel test/CN={name} update signing")
    _issue(directory, csr, cert_pem, ["-cert", ca_pem, "-keyfile", ca_pem.with_suffix(".key")], "signing",
           start, start + dt.timedelta(days=days))
    return cert_pem, key_pem


def make_keys(directory: Path, name: str = "city", days: int = 3650, *,
              valid_from: dt.datetime | None = None) -> Keys:
    """A fresh update CA and a signing certificate under it, in ``directory`` (the test's tmp dir).

    ``days`` and ``valid_from`` apply to the signing certificate (the CA lives ten years from now).
    """
    ca_pem = make_ca(directory, name)
    cert_pem, key_pem = issue_signing_cert(directory, ca_pem, name, days=days, valid_from=valid_from)
    return Keys(ca_pem, cert_pem, key_pem)


def make_stand_in_root(directory: Path, version: str, *, random_mb: int = 0) -> Path:
    """A tiny root file system tree: enough for a bundle to have something to carry.

    ``random_mb``: that much incompressible content more (a bundle bigger than the sockets' buffers).
    """
    root = directory / f"root-{version}"
    (root / "usr/lib/amtsklingel").mkdir(parents=True, exist_ok=True)
    (root / "etc").mkdir(exist_ok=True)
    (root / "etc/os-release").write_text('PRETTY_NAME="Amtsklingel stand-in root"\nID=debian\n')
    (root / "usr/lib/amtsklingel/image-release").write_text(f"IMAGE_VERSION={version}\n")
    # Incompressible and the same in every version (RAUC wants more than a page of squashfs; adaptive
    # updates find these blocks unchanged).
    (root / "usr/lib/amtsklingel/payload.bin").write_bytes(
        b"".join(hashlib.sha256(b"stand-in %d" % i).digest() for i in range(8192)))
    if random_mb:
        (root / "usr/lib/amtsklingel/big.bin").write_bytes(os.urandom(random_mb * 1024 * 1024))
    return root


def make_ext4(root: Path, out: Path, size_mb: int = 8) -> Path:
    """``root`` as an ext4 image (4 KiB blocks, as the block hash index needs)."""
    _run("mke2fs", "-q", "-F", "-t", "ext4", "-b", "4096", "-m", "0", "-L", "rootfs",
         "-E", "root_owner=0:0", "-d", root, out, f"{size_mb}M")
    return out


def manifest(version: str, compatible: str = COMPATIBLE) -> str:
    return (f"[update]\ncompatible={compatible}\nversion={version}\n\n"
            f"[bundle]\nformat=verity\n\n"
            f"[image.{SLOT_CLASS}]\nfilename={IMAGE_NAME}\nadaptive=block-hash-index\n")


def make_bundle(directory: Path, keys: Keys, version: str, *, root: Path | None = None,
                compatible: str = COMPATIBLE, name: str | None = None) -> Path:
    """A signed verity bundle ``<name or amtsklingel-<version>>.raucb`` in ``directory``; returns its path."""
    directory.mkdir(parents=True, exist_ok=True)
    stem = name or f"amtsklingel-{version}"
    content = directory / f"{stem}.content"
    content.mkdir()
    make_ext4(root or make_stand_in_root(directory, version), content / IMAGE_NAME)
    (content / "manifest.raucm").write_text(manifest(version, compatible))
    bundle = directory / f"{stem}.raucb"
    _run("rauc", "bundle", "--cert", keys.cert_pem, "--key", keys.key_pem, content, bundle)
    shutil.rmtree(content)
    return bundle


def bundle_info(bundle: Path, keyring: Path | None = None) -> dict:
    """What ``rauc info`` tells about a bundle (verifying it against ``keyring``, or not at all)."""
    args = ["rauc", "info", "--output-format=json"]
    args += [f"--keyring={keyring}"] if keyring else ["--no-verify"]
    return json.loads(_run(*args, bundle))


def bundle_report(bundle: Path, keyring: Path) -> str:
    """``rauc info`` as a person reads it, verified against ``keyring``: the format and the signer are
    only in this form (RAUC 1.8's JSON leaves them out). Raises RuntimeError when verification fails."""
    return _run("rauc", "info", f"--keyring={keyring}", bundle)


def bundle_signature(bundle: Path) -> bytes:
    """The CMS signature (DER) a bundle ends with: its size is the bundle's last eight bytes."""
    with bundle.open("rb") as f:
        f.seek(-8, os.SEEK_END)
        size = int.from_bytes(f.read(8), "big")
        f.seek(-8 - size, os.SEEK_END)
        return f.read(size)


def signing_time(bundle: Path) -> dt.datetime:
    """The signing time the signer wrote into the bundle's signature."""
    printed = subprocess.run(["openssl", "cms", "-cmsout", "-print", "-inform", "DER"], input=bundle_signature(bundle),
                             capture_output=True, check=True).stdout.decode()
    found = re.search(r"signingTime.*?\n\s*set:\s*\n\s*UTCTIME:(.+?)\n", printed, re.S)
    if not found:
        raise RuntimeError("the bundle's signature has no signing time")
    return dt.datetime.strptime(found.group(1).strip(), "%b %d %H:%M:%S %Y %Z").replace(tzinfo=dt.UTC)


def verify_at(bundle: Path, keyring: Path, when: dt.datetime) -> subprocess.CompletedProcess:
    """Checks the bundle's signature and certificate chain against ``keyring`` as of ``when``: RAUC's
    check, with ``use-bundle-signing-time`` when ``when`` is the bundle's signing time."""
    return subprocess.run(["openssl", "cms", "-verify", "-inform", "DER", "-binary", "-CAfile", str(keyring),
                           "-attime", str(int(when.timestamp())), "-out", "/dev/null"],
                          input=bundle_signature(bundle), capture_output=True)
