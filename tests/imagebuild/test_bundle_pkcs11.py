"""docs/updates.md's "A token (PKCS#11)", done with SoftHSM standing in for the city's smart card or HSM:
the key is made on the token and never leaves it, the CA issues its certificate from a request the token
signed, and ``./build.sh bundle --key pkcs11:...`` (image/build/bundle.sh) signs with it. A unit's keyring
then accepts the bundle; a wrong PIN stops the build with the token's error, and no bundle is left."""
from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.imagebuild.test_bundle import VERSION, _bundle, _stand_in_root
from tests.rauc_bundles import _issue, bundle_report, make_ca

SOFTHSM = Path("/usr/lib/softhsm/libsofthsm2.so")
ENGINE = Path("/usr/lib") / f"{os.uname().machine}-linux-gnu" / "engines-3" / "pkcs11.so"
PIN, SO_PIN = "123456", "87654321"
KEY_URI = "pkcs11:token=amtsklingel;object=update-signing;type=private"


def _run(*args, env: dict, cwd: Path) -> subprocess.CompletedProcess:
    done = subprocess.run([str(a) for a in args], capture_output=True, text=True, env=env, cwd=cwd)
    assert done.returncode == 0, f"{args[0]} failed:\n{done.stdout}{done.stderr}"
    return done


@pytest.fixture(scope="module")
def token(tmp_path_factory):
    """A SoftHSM token with the signing key made inside it, and the CA's certificate for that key."""
    missing = [str(p) for p in (SOFTHSM, ENGINE) if not p.exists()]
    missing += [tool for tool in ("softhsm2-util", "pkcs11-tool") if shutil.which(tool) is None]
    if missing:
        pytest.fail(f"missing {', '.join(missing)}: ./build.sh test installs softhsm2, opensc and "
                    "libengine-pkcs11-openssl")
    d = tmp_path_factory.mktemp("token")
    (d / "tokens").mkdir()
    (d / "softhsm2.conf").write_text(f"directories.tokendir = {d / 'tokens'}\nobjectstore.backend = file\n"
                                     "log.level = ERROR\n")
    env = {**os.environ, "SOFTHSM2_CONF": str(d / "softhsm2.conf")}
    _run("softhsm2-util", "--init-token", "--free", "--label", "amtsklingel", "--so-pin", SO_PIN, "--pin", PIN,
         env=env, cwd=d)
    _run("pkcs11-tool", "--module", SOFTHSM, "--token-label", "amtsklingel", "--login", "--pin", PIN,
         "--keypairgen", "--key-type", "EC:prime256v1", "--id", "01", "--label", "update-signing", env=env, cwd=d)
    # openssl reaches the token through the PKCS#11 engine; the guide's `openssl req -engine pkcs11`.
    (d / "openssl.cnf").write_text(f"openssl_conf = conf\n[conf]\nengines = engines\n[engines]\npkcs11 = pkcs11\n"
                                   f"[pkcs11]\ndynamic_path = {ENGINE}\nMODULE_PATH = {SOFTHSM}\nPIN = {PIN}\n"
                                   "init = 0\n")
    _run("openssl", "req", "-new", "-engine", "pkcs11", "-keyform", "engine", "-key", KEY_URI,
         "-out", d / "signing.csr", "-subj", "/O=Stadt Musterdorf/CN=Amtsklingel update signing on a token",
         env={**env, "OPENSSL_CONF": str(d / "openssl.cnf")}, cwd=d)
    ca = make_ca(d / "ca", "city")
    now = dt.datetime.now(dt.UTC)
    _issue(d, d / "signing.csr", d / "signing.pem", ["-cert", ca, "-keyfile", ca.with_suffix(".key")], "signing",
           now - dt.timedelta(hours=1), now + dt.timedelta(days=365))
    # Only the public half can be read off the token: the private key is not extractable.
    listed = _run("pkcs11-tool", "--module", SOFTHSM, "--token-label", "amtsklingel", "--login", "--pin", PIN,
                  "--list-objects", env=env, cwd=d).stdout
    assert "Private Key Object" in listed and "never extractable" in listed
    return d, env, ca


def test_build_sh_bundle_signs_with_a_key_on_a_pkcs11_token(token, tmp_path):
    if os.geteuid() != 0:
        pytest.fail("bundle.sh runs as root: run the tests as ./build.sh test does")
    d, env, ca = token
    root = _stand_in_root(tmp_path / "build" / "rootfs")
    token_env = {"SOFTHSM2_CONF": env["SOFTHSM2_CONF"], "RAUC_PKCS11_MODULE": str(SOFTHSM), "RAUC_PKCS11_PIN": PIN}
    done = _bundle(root, tmp_path, "--cert", str(d / "signing.pem"), "--key", KEY_URI, "--keyring", str(ca),
                   env=token_env)
    assert done.returncode == 0, done.stdout + done.stderr
    report = bundle_report(tmp_path / f"amtsklingel-{VERSION}-arm64.raucb", ca)
    assert "CN = Amtsklingel update signing on a token" in report

    wrong = _bundle(root, tmp_path / "wrong", "--cert", str(d / "signing.pem"), "--key", KEY_URI,
                    env={**token_env, "RAUC_PKCS11_PIN": "000000"})
    assert wrong.returncode != 0 and "rauc bundle failed" in wrong.stderr, wrong.stderr
    assert not list((tmp_path / "wrong").glob("*.raucb"))
