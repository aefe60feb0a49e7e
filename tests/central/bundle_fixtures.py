"""Keys and bundles for central's bundle tests (made once per test module; tests/rauc_bundles.py)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from central.updates.bundle_file import SIZE_TRAILER
from tests.rauc_bundles import Keys, make_bundle, make_keys


@dataclass(frozen=True)
class Made:
    keys: Keys          # the city's: keys.ca_pem is central's update_keyring
    good: Path          # version 1.1.0+good, signed by the city
    other_key: Path     # signed by a key from another CA
    elsewhere: Path     # for another kind of unit (compatible)
    directory: Path
    other_keys: Keys    # another CA's


def make(directory: Path) -> Made:
    keys = make_keys(directory / "city")
    other = make_keys(directory / "other", "other")
    return Made(keys, make_bundle(directory, keys, "1.1.0+good"),
                make_bundle(directory, other, "1.1.0+other", name="other-key"),
                make_bundle(directory, keys, "1.1.0+pc", compatible="amtsklingel-pc-x86", name="elsewhere"),
                directory, other)


def signature_size(bundle: bytes) -> int:
    return int.from_bytes(bundle[-SIZE_TRAILER:], "big")


def changed(bundle: bytes, position: int) -> bytes:
    """``bundle`` with one byte changed at ``position`` (negative: from the end)."""
    out = bytearray(bundle)
    out[position] ^= 0x5A
    return bytes(out)
