"""The bundle layout on a stand-in root: image/build/bundle.sh (``./build.sh bundle``) bundles a small
root file system as it would the image build's, and ``rauc info`` shows what a unit will see. The
slot image in the bundle is byte for byte slot A of the disk image assemble.sh makes from that root.
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.imagebuild.test_disk_layout import SIZES, _assemble, _fake_root, _table
from tests.rauc_bundles import COMPATIBLE, IMAGE_NAME, bundle_info, bundle_report, make_keys

REPO = Path(__file__).resolve().parents[2]
BUNDLE_SH = REPO / "image" / "build" / "bundle.sh"
COMMIT = "0123456789abcdef0123"
VERSION = f"0.0.0-test+{COMMIT[:12]}"  # appliance.fleet.image.software_version of that root


def _stand_in_root(root: Path) -> Path:
    root.mkdir(parents=True)
    _fake_root(root)
    release = root / "usr/lib/amtsklingel/image-release"
    release.parent.mkdir(parents=True, exist_ok=True)
    release.write_text(f"IMAGE_VERSION=0.0.0-test\nIMAGE_COMMIT={COMMIT}\nIMAGE_BASE=debian\n"
                       f"IMAGE_SUITE=trixie\nSOURCE_DATE_EPOCH=1790000000\n")
    os.utime(release, (1789990000, 1789990000))
    os.utime(release.parent, (1789990000, 1789990000))
    return root


def _bundle(root: Path, out: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, **(env or {}), **SIZES, "AMTSKLINGEL_OUT": str(out),
           "PATH": os.environ.get("PATH", "/usr/bin:/bin") + ":/usr/sbin:/sbin"}
    return subprocess.run([str(BUNDLE_SH), "--rootfs", str(root), *args], capture_output=True, text=True, env=env)


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    return make_keys(tmp_path_factory.mktemp("keys"), "city")


@pytest.fixture(scope="module")
def built(tmp_path_factory, keys):
    if os.geteuid() != 0:
        pytest.fail("bundle.sh runs as root: run the tests as ./build.sh test does")
    work = tmp_path_factory.mktemp("bundle")
    root = _stand_in_root(work / "build" / "rootfs")
    # As ./build.sh image then ./build.sh bundle: assemble.sh leaves the root as it put it into slot A.
    image = _assemble(root, work / "amtsklingel-test.img")
    done = _bundle(root, work, "--cert", str(keys.cert_pem), "--key", str(keys.key_pem), "--keyring", str(keys.ca_pem))
    assert done.returncode == 0, done.stdout + done.stderr
    return work, image, done.stdout


def test_a_unit_sees_the_version_compatible_slot_image_and_signer(built, keys):
    out, _image, log = built
    bundle = out / f"amtsklingel-{VERSION}-arm64.raucb"
    assert bundle.name in log and " MiB (" in log  # the size is printed
    info = bundle_info(bundle, keys.ca_pem)
    assert (info["compatible"], info["version"]) == (COMPATIBLE, VERSION)
    [image] = info["images"]
    assert list(image) == ["rootfs"]
    assert image["rootfs"]["filename"] == IMAGE_NAME
    assert image["rootfs"]["adaptive"] == ["block-hash-index"]
    assert image["rootfs"]["size"] == int(SIZES["AMTSKLINGEL_ROOT_MB"]) << 20
    report = bundle_report(bundle, keys.ca_pem)
    assert "Bundle Format: \tverity" in report
    assert "Subject: CN = city update signing" in report
    with pytest.raises(RuntimeError, match="signature"):
        bundle_report(bundle, make_keys(out / "other", "other").ca_pem)


def test_the_slot_image_is_byte_for_byte_slot_a_of_the_disk_image(built, keys, tmp_path):
    out, img, _log = built
    extracted = tmp_path / "extracted"
    subprocess.run(["rauc", "extract", f"--keyring={keys.ca_pem}", str(out / f"amtsklingel-{VERSION}-arm64.raucb"),
                    str(extracted)], check=True, capture_output=True)
    slot_image = (extracted / IMAGE_NAME).read_bytes()
    slot_a = next(p for p in _table(img)["parts"] if p["name"] == "rootfs-a")
    with img.open("rb") as disk:
        disk.seek(slot_a["start"] * 512)
        assert disk.read(len(slot_image)) == slot_image
    assert slot_a["size"] * 512 == len(slot_image)


def test_an_unsigned_bundle_is_refused_before_any_work(tmp_path):
    root = _stand_in_root(tmp_path / "rootfs")
    done = _bundle(root, tmp_path)
    assert done.returncode != 0 and "--cert and --key" in done.stderr
    assert not list(tmp_path.glob("*.raucb"))


def test_a_bundle_signed_outside_the_units_keyring_stops_the_build(tmp_path, keys):
    root = _stand_in_root(tmp_path / "rootfs")
    stranger = make_keys(tmp_path / "stranger", "stranger")
    done = _bundle(root, tmp_path, "--cert", str(stranger.cert_pem), "--key", str(stranger.key_pem),
                   "--keyring", str(keys.ca_pem))
    assert done.returncode != 0 and "rauc bundle failed" in done.stderr
