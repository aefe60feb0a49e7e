"""Checking a bundle before central offers it: the same checks RAUC makes on the unit.

1. The signature at the end is a CMS signed by a certificate that chains to central's update keyring
   (``update_keyring``), as of the bundle's signing time (RAUC's ``use-bundle-signing-time=true``,
   so neither a unit without a clock nor a certificate expired since locks anything out). The check is
   OpenSSL's own (``openssl cms -verify``), with the same default purpose RAUC uses (S/MIME signing).
2. The signed manifest is for this kind of unit (``update_compatible``), in verity format, with an
   image for the root file system slot.
3. The dm-verity hash tree covers the payload and matches the signed root hash (central/updates/verity.py).

Blocking (reads the whole file): run it in a worker thread, as central/updates/library.py does.
"""
from __future__ import annotations

import datetime as dt
import logging
import os
import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509

from central.updates.bundle_file import (
    BundleRefused,
    Manifest,
    is_detached,
    parse_manifest,
    read_layout,
    signing_time,
)
from central.updates.verity import check_tree

log = logging.getLogger(__name__)

SLOT_CLASS = "rootfs"  # the unit's slots (image/config/rauc/system.conf): one image for the root file system
OPENSSL_TIMEOUT_S = 60


@dataclass(frozen=True)
class CheckedBundle:
    manifest: Manifest
    signer: str              # the signing certificate's subject, e.g. "CN=Musterdorf Updates 2026,O=Musterdorf"
    signed_at: dt.datetime   # UTC


def check_bundle(path: Path, keyring: Path, compatible: str) -> CheckedBundle:
    """Check the bundle at ``path``; raise BundleRefused (with its UpdateFault) if a unit would refuse it."""
    with open(path, "rb") as f:
        fd = f.fileno()
        layout = read_layout(fd)
        if is_detached(layout.signature):
            raise BundleRefused("incompatible", "the bundle is in RAUC's old 'plain' format (its manifest is not "
                                "inside the signature); the units install only 'verity' bundles: set "
                                "format=verity in the manifest's [bundle] section, as ./build.sh bundle does")
        signed_at = signing_time(layout.signature)
        if signed_at is None:
            raise BundleRefused("signature_invalid", "the bundle's signature has no signing time (one signer with "
                                "a signingTime attribute, as `rauc bundle` writes); the units check the "
                                "certificates as of that time and would refuse it")
        manifest_bytes, signer = _verify_signature(layout.signature, keyring, signed_at)
        manifest = parse_manifest(manifest_bytes)
        if manifest.compatible != compatible:
            raise BundleRefused("incompatible", f"the bundle is for {manifest.compatible[:80]!r}, the kiosks are "
                                f"{compatible!r} (RAUC's compatible); build it for them or set update_compatible")
        if SLOT_CLASS not in manifest.images:
            raise BundleRefused("incompatible", f"the bundle has no image for the units' {SLOT_CLASS!r} slot "
                                f"(a manifest section [image.{SLOT_CLASS}])")
        tree_start = layout.signature_offset - manifest.verity_size
        if tree_start <= 0:
            raise BundleRefused("bundle_corrupt", "the bundle is smaller than its signed hash tree; it was cut short")
        check_tree(fd, tree_start, layout.signature_offset, manifest.verity_hash, manifest.verity_salt)
    return CheckedBundle(manifest, signer, signed_at)


def _verify_signature(cms: bytes, keyring: Path, at: dt.datetime) -> tuple[bytes, str]:
    """The manifest inside ``cms`` and the signer's subject, once OpenSSL verified both."""
    with tempfile.TemporaryDirectory(prefix="amtsklingel-bundle-") as tmp:
        sig, manifest, signer = Path(tmp, "sig.der"), Path(tmp, "manifest"), Path(tmp, "signer.pem")
        sig.write_bytes(cms)
        done = subprocess.run(
            ["openssl", "cms", "-verify", "-binary", "-inform", "DER", "-in", str(sig), "-CAfile", str(keyring),
             "-attime", str(int(at.timestamp())), "-out", str(manifest), "-signer", str(signer)],
            capture_output=True, text=True, timeout=OPENSSL_TIMEOUT_S, env={**os.environ, "LC_ALL": "C"})
        if done.returncode != 0:
            raise BundleRefused("signature_invalid", _signature_problem(done.stderr, at))
        certificate = x509.load_pem_x509_certificate(signer.read_bytes())
        return manifest.read_bytes(), certificate.subject.rfc4514_string()[:200]


def _signature_problem(stderr: str, at: dt.datetime) -> str:
    """OpenSSL's reason, said for the person who uploaded the bundle."""
    chain = re.search(r"Verify error:\s*([^\n]+)", stderr)  # why the certificate chain did not hold
    if chain is not None:
        reason = chain.group(1).strip()
        if "issuer certificate" in reason or "self-signed certificate" in reason:
            return ("the bundle is not signed with a key of central's update keyring (update_keyring): "
                    f"{reason}; sign it with the city's update key (docs/updates.md) or add its CA to the keyring")
        return (f"the bundle's signing certificate was not valid when it was signed "
                f"({at.strftime('%Y-%m-%d %H:%M UTC')}): {reason}")
    reasons = re.findall(r"error:[0-9A-F]+:[^:\n]*:[^:\n]*:([^:\n]+):", stderr)
    if "content verify error" in reasons or "verification failure" in reasons:
        return ("the bundle's signature does not match its manifest: the signature or the manifest was changed "
                "after signing (sign it again)")
    return ("the bundle's signature cannot be checked, it is damaged or not a CMS signature (OpenSSL: "
            f"{'; '.join(reasons[:3]) or 'no reason given'}); sign it again")
