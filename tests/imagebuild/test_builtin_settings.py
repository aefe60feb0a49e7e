"""./build.sh image --central URL [--ca FILE] [--update-keyring FILE]: the image's built-in settings, checked
before the build.

image/build/builtin-settings.py run as the build runs it (the host's python3, the real openssl), with
CA certificates and keys this test makes itself.
"""
from __future__ import annotations

import datetime
import importlib.util
import os
import subprocess
import tomllib
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from appliance.config import ApplianceConfig, is_test_host

REPO = Path(__file__).resolve().parents[2]
BUILD = REPO / "image" / "build"
HELPER = BUILD / "builtin-settings.py"
DEFAULTS = REPO / "image/config/appliance.toml"


def _helper(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["/usr/bin/python3", str(HELPER), *args], capture_output=True, text=True, timeout=60)


def _ca_pem(name: str = "Stadt Musterdorf CA", days: int = 3650) -> tuple[bytes, bytes]:
    """(certificate, private key) of a self-signed CA, PEM."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    start = now - datetime.timedelta(days=30) if days > 0 else now - datetime.timedelta(days=60)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(start)
            .not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    return (cert.public_bytes(serialization.Encoding.PEM),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()))


@pytest.mark.parametrize("url", ["https://buergerbuero.musterdorf.de", "https://central.example.org:8443/amt/",
                                 "http://central.amtsklingel.test:8080", "http://127.0.0.1:8080",
                                 "http://localhost:8080", "http://[::1]:8080"])
def test_central_addresses_a_unit_can_use(url):
    done = _helper("check", "--central", url)
    assert done.returncode == 0, done.stderr
    assert f"central {url.rstrip('/')}" in done.stdout


@pytest.mark.parametrize(("url", "says"), [
    ("http://buergerbuero.musterdorf.de", "refuse plain http://"),
    ("http://10.20.30.40:8080", "refuse plain http://"),
    ("http://central.test.example.org", "refuse plain http://"),
    ("ftp://buergerbuero.musterdorf.de", "starts with https://"),
    ("buergerbuero.musterdorf.de", "starts with https://"),
    ("https://admin:secret@buergerbuero.musterdorf.de", "only scheme, host, port and path"),
    ("https://buergerbuero.musterdorf.de/?x=1", "only scheme, host, port and path"),
    ("https://buergerbuero.musterdorf.de:99999", "port is not a number"),
    ("https://buergerbuero.musterdorf.de:0", "port is not a number"),
    ('https://buergerbuero.musterdorf.de/"x', "not an address"),
])
def test_central_addresses_no_unit_could_use_are_refused(url, says):
    done = _helper("check", "--central", url)
    assert done.returncode == 2 and says in done.stderr, done.stderr


def test_the_built_in_file_carries_central_and_the_ca(tmp_path):
    cert, _key = _ca_pem()
    (tmp_path / "city-ca.pem").write_bytes(b"Stadt Musterdorf\r\n" + cert.replace(b"\n", b"\r\n"))
    root = tmp_path / "root"
    done = _helper("write", "--central", "https://buergerbuero.musterdorf.de/", "--ca", str(tmp_path / "city-ca.pem"),
                   "--defaults", str(DEFAULTS), "--root", str(root))
    assert done.returncode == 0, done.stderr
    settings = tomllib.loads((root / "usr/share/amtsklingel/appliance.toml").read_text())
    assert settings == {"central_url": "https://buergerbuero.musterdorf.de",
                        "ca_file": "/usr/share/amtsklingel/central-ca.pem", "hardware": {"backend": "pi"},
                        "update": {"backend": "rauc"}}
    # Only the certificate goes in, as the unit's TLS library reads it.
    assert (root / "usr/share/amtsklingel/central-ca.pem").read_bytes() == cert
    for name in ("appliance.toml", "central-ca.pem"):
        assert (root / "usr/share/amtsklingel" / name).stat().st_mode & 0o777 == 0o644


def test_without_a_ca_the_unit_trusts_the_system_store(tmp_path):
    done = _helper("write", "--central", "https://buergerbuero.musterdorf.de", "--defaults", str(DEFAULTS),
                   "--root", str(tmp_path))
    assert done.returncode == 0, done.stderr
    settings = tomllib.loads((tmp_path / "usr/share/amtsklingel/appliance.toml").read_text())
    assert "ca_file" not in settings and settings["central_url"] == "https://buergerbuero.musterdorf.de"
    assert not (tmp_path / "usr/share/amtsklingel/central-ca.pem").exists()


def test_the_image_defaults_select_the_pi_rauc_and_no_central():
    """Without --central the image still builds: central_url comes from the boot partition."""
    assert tomllib.loads(DEFAULTS.read_text()) == {"hardware": {"backend": "pi"}, "update": {"backend": "rauc"}}


@pytest.mark.parametrize(("content", "says"), [
    (b"not a certificate\n", "no PEM certificate"),
    (b"\x30\x82\x01\x0a\x02\x82\x01\x01\x00\xff", "binary data"),
    (b"-----BEGIN CERTIFICATE-----\nTm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n", "openssl cannot read it"),
])
def test_a_ca_file_that_is_not_pem_certificates_is_refused(tmp_path, content, says):
    (tmp_path / "ca.pem").write_bytes(content)
    done = _helper("check", "--central", "https://buergerbuero.musterdorf.de", "--ca", str(tmp_path / "ca.pem"))
    assert done.returncode == 2 and says in done.stderr, done.stderr


def test_a_private_key_never_goes_into_the_image(tmp_path):
    cert, key = _ca_pem()
    (tmp_path / "ca.pem").write_bytes(cert + key)
    done = _helper("write", "--central", "https://buergerbuero.musterdorf.de", "--ca", str(tmp_path / "ca.pem"),
                   "--defaults", str(DEFAULTS), "--root", str(tmp_path / "root"))
    assert done.returncode == 2 and "private key" in done.stderr
    assert not (tmp_path / "root").exists()


def test_an_expired_ca_is_refused(tmp_path):
    cert, _key = _ca_pem(days=-1)
    (tmp_path / "ca.pem").write_bytes(cert)
    done = _helper("check", "--central", "https://buergerbuero.musterdorf.de", "--ca", str(tmp_path / "ca.pem"))
    assert done.returncode == 2 and "has expired" in done.stderr and "Stadt Musterdorf CA" in done.stderr


def _build(*args: str, **env: str) -> subprocess.CompletedProcess:
    """build-image.sh with settings it must refuse at once (before it asks for root or builds anything)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AMTSKLINGEL_")} | env
    return subprocess.run([str(BUILD / "build-image.sh"), *args], capture_output=True, text=True, timeout=60, env=env)


def test_the_build_refuses_bad_settings_before_it_starts(tmp_path):
    done = _build("--central", "http://buergerbuero.musterdorf.de", "--reuse-base")
    assert done.returncode == 2 and "refuse plain http://" in done.stderr, done.stderr
    (tmp_path / "ca.pem").write_text("not a certificate\n")
    done = _build("--central=https://buergerbuero.musterdorf.de", f"--ca={tmp_path / 'ca.pem'}")
    assert done.returncode == 2 and "no PEM certificate" in done.stderr, done.stderr
    done = _build("--ca", str(tmp_path / "ca.pem"))
    assert done.returncode == 1 and "without --central" in done.stderr, done.stderr
    # The environment form, as CI would set it.
    done = _build(AMTSKLINGEL_CENTRAL_URL="ftp://x.test")
    assert done.returncode == 2 and "starts with https://" in done.stderr, done.stderr
    done = _build("--help")
    assert done.returncode == 0 and "--central URL" in done.stdout and "AMTSKLINGEL_CENTRAL_CA" in done.stdout


@pytest.mark.parametrize("host", ["localhost", "LOCALHOST.", "kiosk.localhost", "test", "central.amtsklingel.test",
                                  "127.0.0.1", "127.8.9.10", "::1", "10.0.0.1", "central.test.example.org",
                                  "testing", "buergerbuero.musterdorf.de", "0.0.0.0", "::"])
def test_the_build_and_the_unit_agree_on_plain_http(host):
    """The build refuses exactly the http:// addresses the appliance would refuse at start-up."""
    spec = importlib.util.spec_from_file_location("builtin_settings", HELPER)
    helper = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(helper)
    assert helper.plain_http_allowed(host) == is_test_host(host)


def test_the_unit_reads_the_built_in_file_under_the_boot_tests_settings(tmp_path):
    """The QEMU boot test's image: central built in, only fake hardware on the boot partition, no
    token: the appliance starts in enrolment mode against the built-in central, with the fakes."""
    cert, _key = _ca_pem()
    (tmp_path / "city-ca.pem").write_bytes(cert)
    done = _helper("write", "--central", "http://central.amtsklingel.test:8080", "--ca", str(tmp_path / "city-ca.pem"),
                   "--defaults", str(DEFAULTS), "--root", str(tmp_path / "root"))
    assert done.returncode == 0, done.stderr
    built_in = tmp_path / "root/usr/share/amtsklingel/appliance.toml"
    # ca_file is the image's absolute path; here it points into the test's root instead.
    built_in.write_text(built_in.read_text().replace('"/usr/share/', f'"{tmp_path}/root/usr/share/'))
    data = tmp_path / "data"
    data.mkdir()
    unit = tmp_path / "unit.toml"
    unit.write_text(f'data_dir = "{data}"\n' + (BUILD / "selftest/enrol/appliance.toml").read_text())
    config = ApplianceConfig.load(built_in, unit)
    assert (config.central_url, config.hardware, config.token) == (
        "http://central.amtsklingel.test:8080", {"backend": "fake"}, None)
    assert config.ca_file == tmp_path / "root/usr/share/amtsklingel/central-ca.pem"
    assert config.token_path == data / "kiosk-token"
    # On a real unit (nothing on the boot partition, or an empty file): the Pi backend.
    (tmp_path / "empty.toml").write_text("")
    assert ApplianceConfig.load(built_in, tmp_path / "empty.toml").hardware == {"backend": "pi"}


def test_the_update_keyring_goes_in_as_rauc_reads_it(tmp_path):
    """Two CAs during a key rotation (docs/updates.md); only their certificates reach the image."""
    old, _ = _ca_pem("Stadt Musterdorf Updates 2026")
    new, _ = _ca_pem("Stadt Musterdorf Updates 2027")
    (tmp_path / "keyring.pem").write_bytes(b"# the city's update CAs\n" + old + new)
    root = tmp_path / "root"
    done = _helper("write", "--update-keyring", str(tmp_path / "keyring.pem"), "--root", str(root))
    assert done.returncode == 0, done.stderr
    assert "update keyring: 2 certificate(s)" in done.stdout
    keyring = root / "usr/share/amtsklingel/update-keyring.pem"
    assert keyring.read_bytes() == old + new and keyring.stat().st_mode & 0o777 == 0o644
    # RAUC's configuration names that file.
    assert "path=/usr/share/amtsklingel/update-keyring.pem" in (REPO / "image/config/rauc/system.conf").read_text()
    # Without --central no appliance settings are written: the image's defaults stay.
    assert not (root / "usr/share/amtsklingel/appliance.toml").exists()


def test_an_update_keyring_with_a_private_key_or_no_certificate_is_refused(tmp_path):
    cert, key = _ca_pem()
    (tmp_path / "with-key.pem").write_bytes(cert + key)
    done = _helper("write", "--update-keyring", str(tmp_path / "with-key.pem"), "--root", str(tmp_path / "root"))
    assert done.returncode == 2 and "--update-keyring" in done.stderr and "private key" in done.stderr, done.stderr
    assert not (tmp_path / "root").exists()
    (tmp_path / "empty.pem").write_text("")
    done = _build("--central", "https://buergerbuero.musterdorf.de", "--update-keyring", str(tmp_path / "empty.pem"))
    assert done.returncode == 2 and "--update-keyring" in done.stderr and "no PEM certificate" in done.stderr, done.stderr
    # The environment form, as CI would set it.
    done = _build(AMTSKLINGEL_UPDATE_KEYRING=str(tmp_path / "with-key.pem"))
    assert done.returncode == 2 and "private key" in done.stderr, done.stderr
    done = _build("--help")
    assert done.returncode == 0 and "--update-keyring FILE" in done.stdout and "AMTSKLINGEL_UPDATE_KEYRING" in done.stdout
