#!/usr/bin/python3
"""The image's built-in settings: central's address (and the city's CA) and the update keyring, for every unit.

    builtin-settings.py check [--central URL [--ca FILE]] [--update-keyring FILE]
    builtin-settings.py write [--central URL [--ca FILE]] [--update-keyring FILE] --defaults FILE --root ROOT

``check`` refuses what no unit could use, before the long build starts: a URL other than
``https://`` (``http://`` only for loopback and ``.test`` hosts, the test set-ups), a CA file that is
not PEM certificates, or one that holds a private key or an expired certificate.
``write`` puts ``/usr/share/amtsklingel/appliance.toml`` into the root file system ROOT: the central
settings followed by the image's defaults (image/config/appliance.toml, ``[hardware] backend = "pi"``),
and the CA as ``/usr/share/amtsklingel/central-ca.pem``. A unit's own appliance.toml on the boot
partition still overrides all of it, table by table.
``--update-keyring`` is the CA (or CAs, during a key rotation) that signs the city's update bundles:
checked like ``--ca`` and written to ``/usr/share/amtsklingel/update-keyring.pem``, RAUC's keyring
(image/config/rauc/system.conf, docs/updates.md).
Runs on the build host: standard library and ``openssl`` only.
"""
from __future__ import annotations

import argparse
import ipaddress
import re
import subprocess
import sys
import tempfile
import tomllib
import urllib.parse
from pathlib import Path

SETTINGS = "usr/share/amtsklingel/appliance.toml"
CA_TARGET = "/usr/share/amtsklingel/central-ca.pem"
KEYRING_TARGET = "/usr/share/amtsklingel/update-keyring.pem"
PEM_CERTIFICATE = re.compile(r"-----BEGIN CERTIFICATE-----\r?\n.*?-----END CERTIFICATE-----", re.S)


class SettingsError(Exception):
    """What the person building the image has to change; printed as it is."""


def plain_http_allowed(host: str) -> bool:
    """http:// only where no one else can listen: loopback, or an RFC 6761 .test name (test set-ups).
    The appliance's own rule (appliance.config.is_test_host); tests/imagebuild checks they agree."""
    host = host.lower().rstrip(".")
    if host in ("localhost", "test") or host.endswith((".localhost", ".test")):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_url(url: str) -> str:
    example = "e.g. --central https://buergerbuero.musterdorf.de"
    if not url or any(c.isspace() or c in '"\\' or ord(c) < 32 for c in url):
        raise SettingsError(f"--central {url!r}: not an address ({example})")
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise SettingsError(f"--central {url}: central's address starts with https:// ({example})")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise SettingsError(f"--central {url}: only scheme, host, port and path belong there ({example})")
    try:
        port = parts.port
    except ValueError:
        port = -1
    if port is not None and not 1 <= port <= 65535:
        raise SettingsError(f"--central {url}: the port is not a number between 1 and 65535")
    if parts.scheme == "http" and not plain_http_allowed(parts.hostname):
        raise SettingsError(f"--central {url}: units refuse plain http:// except for loopback and .test hosts "
                            f"(test set-ups); give central's https:// address")
    return url.rstrip("/")


def check_ca(path: Path, option: str = "--ca") -> list[str]:
    """The PEM certificates in the CA file; refuses anything else."""
    try:
        text = path.read_text(encoding="ascii")
    except OSError as exc:
        raise SettingsError(f"{option} {path}: cannot be read ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise SettingsError(f"{option} {path}: not a PEM file (binary data; a DER certificate converts with "
                            f"'openssl x509 -inform der -in {path.name} -out city-ca.pem')") from None
    if "PRIVATE KEY" in text:
        raise SettingsError(f"{option} {path}: holds a private key, which must never go into an image; give only the "
                            "CA's certificate")
    certificates = PEM_CERTIFICATE.findall(text)
    if not certificates:
        raise SettingsError(f"{option} {path}: no PEM certificate (-----BEGIN CERTIFICATE-----) in it")
    for number, pem in enumerate(certificates, 1):
        which = f"{option} {path}, certificate {number}"
        done = subprocess.run(["openssl", "x509", "-noout", "-subject", "-checkend", "0"], input=pem + "\n",
                              capture_output=True, text=True)
        if "subject" not in done.stdout:
            raise SettingsError(f"{which}: openssl cannot read it ({done.stderr.strip().splitlines()[-1:]})")
        if done.returncode != 0:
            raise SettingsError(f"{which} ({done.stdout.splitlines()[0]}) has expired; ask for the CA's current "
                                "certificate")
    return [pem.replace("\r\n", "\n") for pem in certificates]


def settings_text(url: str, with_ca: bool, defaults: str) -> str:
    lines = ["# Built in by ./build.sh image --central (image/build/builtin-settings.py). A unit's own",
             "# appliance.toml on the boot partition overrides these settings, table by table.",
             f'central_url = "{url}"']
    if with_ca:
        lines.append(f'ca_file = "{CA_TARGET}"')
    text = "\n".join(lines) + "\n\n" + defaults
    tomllib.loads(text)  # what the unit will read
    return text


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False) as tmp:
        tmp.write(text)
    Path(tmp.name).chmod(0o644)
    Path(tmp.name).replace(path)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=("check", "write"))
    parser.add_argument("--central")
    parser.add_argument("--ca", type=Path)
    parser.add_argument("--update-keyring", type=Path)
    parser.add_argument("--defaults", type=Path)
    parser.add_argument("--root", type=Path)
    args = parser.parse_args(argv)
    if args.ca and not args.central:
        parser.error("--ca is the CA of central's certificate: give --central too")
    said = []
    try:
        url = check_url(args.central) if args.central is not None else None
        certificates = check_ca(args.ca) if args.ca else []
        keyring = check_ca(args.update_keyring, "--update-keyring") if args.update_keyring else []
        if args.action == "write":
            if not args.root or (url and not args.defaults):
                parser.error("write needs --root (and --defaults with --central)")
            if url:
                _write(args.root / SETTINGS, settings_text(url, bool(certificates), args.defaults.read_text()))
            if certificates:
                _write(args.root / CA_TARGET.lstrip("/"), "\n".join(certificates) + "\n")
            if keyring:
                _write(args.root / KEYRING_TARGET.lstrip("/"), "\n".join(keyring) + "\n")
    except SettingsError as exc:
        print(f"image: {exc}", file=sys.stderr)
        return 2
    if url:
        said.append(f"central {url}" + (f", its CA: {len(certificates)} certificate(s) from {args.ca}"
                                        if certificates else ""))
    if keyring:
        said.append(f"update keyring: {len(keyring)} certificate(s) from {args.update_keyring}")
    print("; ".join(said) or "nothing to build in")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
