"""docs/updates.md, checked with the host's openssl and rauc: its commands make a CA and signing key
that sign bundles, the separate signing step with ``rauc resign``, two CAs in the keyring during a
rotation, and what verifying at the bundle's signing time (``use-bundle-signing-time``) accepts and
refuses."""
from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.rauc_bundles import (
    Keys,
    bundle_report,
    make_bundle,
    make_keys,
    signing_time,
    verify_at,
)

DOC = Path(__file__).resolve().parents[2] / "docs" / "updates.md"


def _section_block(title: str) -> str:
    section = DOC.read_text().split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]
    return re.search(r"```sh\n(.*?)```", section, re.S).group(1)


def test_the_guides_commands_make_a_ca_and_signing_key_that_sign_bundles(tmp_path):
    script = _section_block("Making the CA and the signing key")
    # The passphrase prompt is the one interactive line; the test gives the passphrase directly.
    script = "\n".join(line for line in script.splitlines() if not line.startswith("read "))
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=tmp_path, capture_output=True, text=True,
                          env={**os.environ, "CA_PASS": "correct horse battery staple"})
    assert done.returncode == 0, done.stderr
    assert "signing.pem: OK" in done.stdout
    assert "ENCRYPTED PRIVATE KEY" in (tmp_path / "update-ca.key").read_text()
    keys = Keys(tmp_path / "update-ca.pem", tmp_path / "signing.pem", tmp_path / "signing.key")
    bundle = make_bundle(tmp_path / "out", keys, "1.0.0")
    assert "CN = Amtsklingel update signing 2026" in bundle_report(bundle, keys.ca_pem)


def test_a_bundle_resigned_on_the_signing_machine_verifies_only_against_the_citys_ca(tmp_path):
    build = make_keys(tmp_path / "build", "build-machine")
    city = make_keys(tmp_path / "city", "city")
    made = make_bundle(tmp_path, build, "1.0.0")
    signed = tmp_path / "signed.raucb"
    subprocess.run(["rauc", "resign", f"--keyring={build.ca_pem}", f"--signing-keyring={city.ca_pem}",
                    f"--cert={city.cert_pem}", f"--key={city.key_pem}", made, signed], check=True, capture_output=True)
    assert "CN = city update signing" in bundle_report(signed, city.ca_pem)
    with pytest.raises(RuntimeError):
        bundle_report(signed, build.ca_pem)
    # The signing machine signs nothing the build machine did not make.
    stranger = make_bundle(tmp_path, make_keys(tmp_path / "stranger", "stranger"), "6.6.6")
    refused = subprocess.run(["rauc", "resign", f"--keyring={build.ca_pem}", f"--signing-keyring={city.ca_pem}",
                              f"--cert={city.cert_pem}", f"--key={city.key_pem}", stranger, tmp_path / "never.raucb"],
                             capture_output=True)
    assert refused.returncode != 0 and not (tmp_path / "never.raucb").exists()


def test_during_a_rotation_the_keyring_with_both_cas_takes_bundles_of_either_key(tmp_path):
    old, new = make_keys(tmp_path / "old", "city-2026"), make_keys(tmp_path / "new", "city-2031")
    both = tmp_path / "update-keyring.pem"
    both.write_text(old.ca_pem.read_text() + new.ca_pem.read_text())
    by_old, by_new = make_bundle(tmp_path, old, "1.0.0"), make_bundle(tmp_path, new, "2.0.0")
    assert "city-2026" in bundle_report(by_old, both) and "city-2031" in bundle_report(by_new, both)
    # A unit that has not yet taken the two-CA keyring refuses the new key's bundles.
    with pytest.raises(RuntimeError):
        bundle_report(by_new, old.ca_pem)


def test_a_bundle_signed_while_its_certificate_was_valid_verifies_at_its_signing_time_for_good(tmp_path):
    keys = make_keys(tmp_path, "city", days=1)  # expires tomorrow
    bundle = make_bundle(tmp_path, keys, "1.0.0")
    signed = signing_time(bundle)
    assert abs(signed - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=5)
    assert verify_at(bundle, keys.ca_pem, signed).returncode == 0
    # Checked against the unit's clock, a week later the certificate has expired, and a unit whose
    # clock is a year behind (no RTC, no time server yet) sees a certificate not yet valid.
    week_later = verify_at(bundle, keys.ca_pem, signed + dt.timedelta(days=7))
    assert week_later.returncode != 0 and b"certificate has expired" in week_later.stderr
    year_behind = verify_at(bundle, keys.ca_pem, signed - dt.timedelta(days=366))
    assert year_behind.returncode != 0 and b"not yet valid" in year_behind.stderr
    # The signing time stays in the bundle: the same check years later gives the same answer.
    assert signing_time(bundle) == signed


def test_a_bundle_signed_with_an_expired_certificate_is_refused_whatever_the_clock(tmp_path):
    keys = make_keys(tmp_path, "lapsed", days=1, valid_from=dt.datetime.now(dt.UTC) - dt.timedelta(days=30))
    bundle = make_bundle(tmp_path, keys, "1.0.0")  # openssl signs with an expired certificate all the same
    refused = verify_at(bundle, keys.ca_pem, signing_time(bundle))
    assert refused.returncode != 0 and b"certificate has expired" in refused.stderr
    with pytest.raises(RuntimeError, match="expired"):
        bundle_report(bundle, keys.ca_pem)  # the host's RAUC, at its clock, too
