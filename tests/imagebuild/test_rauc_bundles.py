"""The shared helper that makes throwaway update keys and RAUC bundles (tests/rauc_bundles.py)."""
import datetime as dt
import os
import subprocess

import pytest

from tests.rauc_bundles import (
    COMPATIBLE,
    IMAGE_NAME,
    bundle_info,
    bundle_report,
    issue_signing_cert,
    make_bundle,
    make_keys,
)


def _verify_chain(keys, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(["openssl", "verify", "-CAfile", keys.ca_pem, *extra, keys.cert_pem],
                          capture_output=True, text=True)


def test_the_signing_certificate_chains_to_its_ca_and_no_key_is_in_the_keyring(tmp_path):
    keys = make_keys(tmp_path, "city")
    assert _verify_chain(keys).returncode == 0
    assert "PRIVATE KEY" not in keys.ca_pem.read_text()
    assert "PRIVATE KEY" in keys.key_pem.read_text()
    other = make_keys(tmp_path, "other")
    assert subprocess.run(["openssl", "verify", "-CAfile", other.ca_pem, keys.cert_pem],
                          capture_output=True).returncode != 0


def test_an_already_expired_signing_certificate_can_be_made(tmp_path):
    now = dt.datetime.now(dt.UTC)
    keys = make_keys(tmp_path, "lapsed", days=1, valid_from=now - dt.timedelta(days=10))
    refused = _verify_chain(keys)
    assert refused.returncode != 0 and "expired" in refused.stdout + refused.stderr
    # It was valid nine and a half days ago.
    then = int((now - dt.timedelta(days=9, hours=12)).timestamp())
    assert _verify_chain(keys, "-attime", str(then)).returncode == 0


def test_a_bundle_has_the_agreed_layout_and_verifies_only_against_its_own_ca(tmp_path):
    keys = make_keys(tmp_path)
    bundle = make_bundle(tmp_path, keys, "0.2.0+abc1234")
    assert bundle.name == "amtsklingel-0.2.0+abc1234.raucb"
    info = bundle_info(bundle, keys.ca_pem)
    assert (info["compatible"], info["version"]) == (COMPATIBLE, "0.2.0+abc1234")
    [image] = info["images"]
    assert image["rootfs"]["filename"] == IMAGE_NAME
    assert image["rootfs"]["adaptive"] == ["block-hash-index"]
    report = bundle_report(bundle, keys.ca_pem)
    assert "Bundle Format: \tverity" in report
    assert "Subject: CN = city update signing" in report
    with pytest.raises(RuntimeError, match="signature"):
        bundle_report(bundle, make_keys(tmp_path, "other").ca_pem)


def test_a_bundle_carries_the_given_root_and_compatible(tmp_path):
    keys = make_keys(tmp_path)
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc/marker").write_text("from the given root\n")
    (root / "big").write_bytes(bytes(range(256)) * 64 + os.urandom(65536))
    bundle = make_bundle(tmp_path, keys, "9", root=root, compatible="somebody-else", name="odd")
    assert bundle.name == "odd.raucb"
    assert bundle_info(bundle)["compatible"] == "somebody-else"
    extracted = tmp_path / "extracted"
    subprocess.run(["rauc", "extract", f"--keyring={keys.ca_pem}", bundle, extracted], check=True,
                   capture_output=True)
    listing = subprocess.run(["debugfs", "-R", "cat /etc/marker", extracted / IMAGE_NAME],
                             capture_output=True, text=True, check=True).stdout
    assert listing == "from the given root\n"


def test_a_second_signing_certificate_from_the_same_ca_verifies_against_it(tmp_path):
    keys = make_keys(tmp_path, "city")
    cert, key = issue_signing_cert(tmp_path, keys.ca_pem, "city-2027")
    bundle = make_bundle(tmp_path, keys._replace(cert_pem=cert, key_pem=key), "1")
    assert "CN = city-2027 update signing" in bundle_report(bundle, keys.ca_pem)
