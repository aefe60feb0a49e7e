"""Central checks a RAUC bundle as the unit's RAUC would: signature against the update keyring at its
signing time, compatible, and the dm-verity hash tree over every byte of the payload."""
from __future__ import annotations

import datetime as dt
import subprocess
from pathlib import Path

import pytest

from central.updates import checks
from central.updates.bundle_file import BLOCK, BundleRefused, signing_time
from central.updates.checks import check_bundle
from tests import rauc_bundles
from tests.central.bundle_fixtures import changed, make, signature_size

COMPATIBLE = "amtsklingel-rpi-arm64"


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    return make(tmp_path_factory.mktemp("bundles"))


def refused(made, data: bytes, tmp_path: Path, compatible: str = COMPATIBLE) -> BundleRefused:
    path = tmp_path / "candidate.raucb"
    path.write_bytes(data)
    with pytest.raises(BundleRefused) as caught:
        check_bundle(path, made.keys.ca_pem, compatible)
    return caught.value


def test_a_bundle_signed_by_the_city_is_accepted_with_its_version_and_signer(made):
    checked = check_bundle(made.good, made.keys.ca_pem, COMPATIBLE)
    assert checked.manifest.version == "1.1.0+good"
    assert checked.manifest.compatible == COMPATIBLE and checked.manifest.images == ("rootfs",)
    assert "city update signing" in checked.signer
    assert abs((dt.datetime.now(dt.UTC) - checked.signed_at).total_seconds()) < 3600


def test_a_bundle_signed_by_another_key_is_refused(made, tmp_path):
    error = refused(made, made.other_key.read_bytes(), tmp_path)
    assert error.fault == "signature_invalid"
    assert "not signed with a key of central's update keyring" in str(error)


def test_a_bundle_for_another_kind_of_unit_is_refused(made, tmp_path):
    error = refused(made, made.elsewhere.read_bytes(), tmp_path)
    assert error.fault == "incompatible"
    assert "'amtsklingel-pc-x86'" in str(error) and "update_compatible" in str(error)


def test_one_changed_byte_anywhere_in_the_payload_is_refused(made, tmp_path):
    data = made.good.read_bytes()
    tree_start = len(data) - 8 - signature_size(data) - _verity_size(made)
    for position in (0, BLOCK + 17, tree_start // 2, tree_start - 1):
        error = refused(made, changed(data, position), tmp_path)
        assert error.fault == "bundle_corrupt", position
        assert "squashfs does not match its signed hash" in str(error)


def test_one_changed_byte_in_the_hash_tree_is_refused(made, tmp_path):
    data = made.good.read_bytes()
    signature_start = len(data) - 8 - signature_size(data)
    tree_start = signature_start - _verity_size(made)
    for position in (tree_start, tree_start + 40, signature_start - BLOCK, signature_start - 1):
        error = refused(made, changed(data, position), tmp_path)
        assert error.fault == "bundle_corrupt", position
        assert "hash" in str(error)


def test_one_changed_byte_in_the_signature_is_refused(made, tmp_path):
    data = made.good.read_bytes()
    signature_start = len(data) - 8 - signature_size(data)
    # The signature value itself (the end of the CMS), the signed manifest (near its start) and the signer's
    # certificate. (Some bytes of a CMS are not signed, e.g. its list of digest algorithms: OpenSSL and RAUC
    # accept a change there, and the payload stays what the city signed.)
    for position in (-8 - 5, signature_start + 100, signature_start + 600):
        error = refused(made, changed(data, position), tmp_path)
        assert error.fault == "signature_invalid", position


def test_a_cut_short_bundle_is_refused(made, tmp_path):
    data = made.good.read_bytes()
    for length in (len(data) - 1, len(data) - 8, len(data) // 2, 100):
        error = refused(made, data[:length], tmp_path)
        assert error.fault == "bundle_corrupt", length
        assert "cut short" in str(error)


def test_a_file_that_is_no_bundle_or_empty_is_refused(made, tmp_path):
    error = refused(made, b"", tmp_path)
    assert error.fault == "bundle_corrupt" and "empty" in str(error)
    error = refused(made, b"PK\x03\x04 this is a zip file, not a bundle " * 2000, tmp_path)
    assert error.fault == "bundle_corrupt" and "not a RAUC bundle" in str(error)


def test_the_signing_time_is_read_from_the_signature(made):
    data = made.good.read_bytes()
    cms = data[-8 - signature_size(data):-8]
    printed = subprocess.run(["openssl", "cms", "-cmsout", "-print", "-inform", "DER"], input=cms,
                             capture_output=True, check=True).stdout.decode()
    utc = printed.split("signingTime", 1)[1].split("UTCTIME:", 1)[1].splitlines()[0].strip()
    assert signing_time(cms) == dt.datetime.strptime(utc, "%b %d %H:%M:%S %Y %Z").replace(tzinfo=dt.UTC)


def test_certificates_are_checked_as_of_the_signing_time_not_now(made):
    """A unit has no clock and certificates expire: RAUC (use-bundle-signing-time) and central check the
    chain at the time the bundle was signed. The city's signing certificate here is valid for ten years;
    checked as of 20 years on it has expired, and as of its signing time it holds."""
    data = made.good.read_bytes()
    cms = data[-8 - signature_size(data):-8]
    signed = signing_time(cms)
    manifest, signer = checks._verify_signature(cms, made.keys.ca_pem, signed)
    assert b"version=1.1.0+good" in manifest and "city update signing" in signer
    with pytest.raises(BundleRefused, match="was not valid when it was signed.*expired") as caught:
        checks._verify_signature(cms, made.keys.ca_pem, signed + dt.timedelta(days=365 * 20))
    assert caught.value.fault == "signature_invalid"


def _verity_size(made) -> int:
    data = made.good.read_bytes()
    cms = data[-8 - signature_size(data):-8]
    manifest, _ = checks._verify_signature(cms, made.keys.ca_pem, signing_time(cms))
    return int(next(line for line in manifest.decode().splitlines() if line.startswith("verity-size=")).split("=")[1])


def test_a_bundle_in_the_old_plain_format_is_refused(made, tmp_path):
    content = tmp_path / "content"
    content.mkdir()
    rauc_bundles.make_ext4(rauc_bundles.make_stand_in_root(tmp_path, "1.0.0"), content / "rootfs.ext4")
    (content / "manifest.raucm").write_text(rauc_bundles.manifest("1.0.0").replace("format=verity", "format=plain")
                                            .replace("adaptive=block-hash-index\n", ""))
    subprocess.run(["rauc", "bundle", "--cert", made.keys.cert_pem, "--key", made.keys.key_pem, content,
                    tmp_path / "plain.raucb"], check=True, capture_output=True)
    error = refused(made, (tmp_path / "plain.raucb").read_bytes(), tmp_path)
    assert error.fault == "incompatible" and "'plain' format" in str(error)


def test_central_and_raucs_own_check_agree_on_changed_bytes(made, tmp_path):
    """Central refuses exactly what RAUC refuses (`rauc extract` checks the signature and the payload as an
    install does), for one changed byte at positions spread over squashfs, hash tree, signature and trailer."""
    data = made.good.read_bytes()
    signature_start = len(data) - 8 - signature_size(data)
    tree_start = signature_start - _verity_size(made)
    positions = sorted({*range(0, tree_start, tree_start // 12), *range(tree_start, signature_start, BLOCK),
                        *range(signature_start, len(data), 37), len(data) - 1})
    disagreements = []
    for position in positions:
        candidate = tmp_path / "candidate.raucb"
        candidate.write_bytes(changed(data, position))
        try:
            check_bundle(candidate, made.keys.ca_pem, COMPATIBLE)
            central_accepts = True
        except BundleRefused:
            central_accepts = False
        extracted = tmp_path / "extracted"
        rauc = subprocess.run(["rauc", "extract", f"--keyring={made.keys.ca_pem}", candidate, extracted],
                              capture_output=True, text=True)
        subprocess.run(["rm", "-rf", extracted], check=True)
        if central_accepts != (rauc.returncode == 0):
            disagreements.append((position, central_accepts, rauc.stderr.strip().splitlines()[-1:]))
    assert len(positions) > 40
    assert disagreements == []


def test_during_a_key_rotation_a_keyring_with_both_cas_accepts_bundles_of_either(made, tmp_path):
    """docs/updates.md: to rotate, the keyring carries the old and the new CA for a while."""
    both = tmp_path / "keyring.pem"
    both.write_text(made.keys.ca_pem.read_text() + made.other_keys.ca_pem.read_text())
    assert check_bundle(made.good, both, COMPATIBLE).manifest.version == "1.1.0+good"
    assert check_bundle(made.other_key, both, COMPATIBLE).manifest.version == "1.1.0+other"
