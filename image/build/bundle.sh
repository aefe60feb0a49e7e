#!/bin/bash
# Makes the signed update bundle of the last image build (RAUC, verity format):
#   out/amtsklingel-<software version>-arm64.raucb
# Its one image, rootfs.ext4 for the slot class "rootfs", is byte for byte the root file system that
# ./build.sh image wrote into slot A (the same tree through the same rootfs-ext4.sh); the kernel and
# initrd travel inside it (/boot), U-Boot loads them from the slot it boots. Units install it into
# their other slot; docs/updates.md tells how.
#
# Run as root after ./build.sh image: ./build.sh bundle --cert CERT --key KEY [options]
#   --cert FILE|URI    the signing certificate (PEM) or its PKCS#11 URI ("pkcs11:token=...;object=...")
#   --key FILE|URI     its private key (PEM) or PKCS#11 URI: keep the city's key off the build machine
#                      (a token, or sign with a throwaway key here and "rauc resign" elsewhere)
#   --intermediate FILE  intermediate CA certificate(s) to carry in the signature
#   --keyring FILE     check the finished bundle against this keyring (the one built into the units,
#                      ./build.sh image --update-keyring): a bundle the units would refuse stops here
#   --rootfs DIR       the root file system to bundle (default: out/build/rootfs of ./build.sh image)
#   --output FILE      the bundle to write (default: out/amtsklingel-<version>-arm64.raucb)
# Environment (all optional): AMTSKLINGEL_BUNDLE_CERT, AMTSKLINGEL_BUNDLE_KEY (as --cert, --key),
#   AMTSKLINGEL_OUT (output directory, default out/), AMTSKLINGEL_ROOT_MB (slot size, default 3072:
#   the same as the image's), RAUC_PKCS11_MODULE and RAUC_PKCS11_PIN (the token's
#   PKCS#11 module and PIN, for URIs: docs/updates.md)
set -euo pipefail
HERE=$(cd "$(dirname "$(readlink -f "$0")")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
# shellcheck source=lib.sh
. "$HERE/lib.sh"
COMPATIBLE=amtsklingel-rpi-arm64  # /etc/rauc/system.conf on the unit (image/config)

CERT=${AMTSKLINGEL_BUNDLE_CERT:-} KEY=${AMTSKLINGEL_BUNDLE_KEY:-}
INTERMEDIATE="" KEYRING="" ROOTFS="" OUTPUT=""
OUT=${AMTSKLINGEL_OUT:-$REPO/out}
while [ $# -gt 0 ]; do
    case $1 in
        --cert|--key|--intermediate|--keyring|--rootfs|--output)
            [ $# -ge 2 ] || die "$1 needs a value (try --help)"
            case $1 in
                --cert) CERT=$2 ;; --key) KEY=$2 ;; --intermediate) INTERMEDIATE=$2 ;;
                --keyring) KEYRING=$2 ;; --rootfs) ROOTFS=$2 ;; --output) OUTPUT=$2 ;;
            esac
            shift ;;
        --*=*) set -- "${1%%=*}" "${1#*=}" "${@:2}"; continue ;;
        -h|--help) sed -n '2,/^[^#]/s/^# \{0,1\}//p' "$0"; exit 0 ;;
        *) die "unknown option $1 (try --help)" ;;
    esac
    shift
done
[ -n "$CERT" ] && [ -n "$KEY" ] ||
    die "a bundle must be signed: give --cert and --key (files or PKCS#11 URIs; docs/updates.md makes them)"
for f in "$CERT" "$KEY" ${INTERMEDIATE:+"$INTERMEDIATE"} ${KEYRING:+"$KEYRING"}; do
    [[ $f == pkcs11:* ]] || [ -r "$f" ] || die "cannot read $f"
done
ROOTFS=${ROOTFS:-$OUT/build/rootfs}
RELEASE=$ROOTFS/usr/lib/amtsklingel/image-release
[ -r "$RELEASE" ] || die "no root file system at $ROOTFS (missing usr/lib/amtsklingel/image-release): run ./build.sh image first, or give --rootfs"

need_root
need_host_tools rauc:rauc mksquashfs:squashfs-tools mke2fs:e2fsprogs debugfs:e2fsprogs

# The image build's own inputs of the file system (they seed its UUID), from the root it made.
release() { sed -n "s/^$1=//p" "$RELEASE" | tr -d "'\"" | head -1; }
export SOURCE_DATE_EPOCH AMTSKLINGEL_IMAGE_VERSION
SOURCE_DATE_EPOCH=$(release SOURCE_DATE_EPOCH)
AMTSKLINGEL_IMAGE_VERSION=$(release IMAGE_VERSION)
[ -n "$SOURCE_DATE_EPOCH" ] && [ -n "$AMTSKLINGEL_IMAGE_VERSION" ] ||
    die "$RELEASE lacks SOURCE_DATE_EPOCH or IMAGE_VERSION"
# The version central compares with what a kiosk reports: the appliance's own reading of that root.
PYTHON=$REPO/.venv/bin/python
[ -x "$PYTHON" ] || die "no $PYTHON: ./build.sh bundle installs it (or run ./build.sh test once)"
VERSION=$(cd "$REPO" && "$PYTHON" -c 'import pathlib, sys
from appliance.fleet.image import software_version
print(software_version(pathlib.Path(sys.argv[1])))' "$ROOTFS") || die "cannot read the software version of $ROOTFS"
OUTPUT=${OUTPUT:-$OUT/amtsklingel-$VERSION-arm64.raucb}
mkdir -p "$(dirname "$OUTPUT")"

say "Update bundle $(basename "$OUTPUT") (version $VERSION, from $ROOTFS)"
CONTENT=$(mktemp -d "$(dirname "$OUTPUT")/.bundle.XXXXXX")
trap 'rm -rf "$CONTENT"' EXIT
"$HERE/rootfs-ext4.sh" "$ROOTFS" "$CONTENT/rootfs.ext4"
cat > "$CONTENT/manifest.raucm" <<MANIFEST
[update]
compatible=$COMPATIBLE
version=$VERSION
description=Amtsklingel $VERSION
build=$SOURCE_DATE_EPOCH

[bundle]
format=verity

[image.rootfs]
filename=rootfs.ext4
adaptive=block-hash-index
MANIFEST
rm -f "$OUTPUT"
rauc bundle --cert="$CERT" --key="$KEY" ${INTERMEDIATE:+--intermediate="$INTERMEDIATE"} \
    ${KEYRING:+--signing-keyring="$KEYRING"} "$CONTENT" "$OUTPUT" > "$CONTENT/rauc.log" 2>&1 ||
    die "rauc bundle failed: $(tail -5 "$CONTENT/rauc.log")"
if [ -n "$KEYRING" ]; then
    rauc info --keyring="$KEYRING" "$OUTPUT" > /dev/null 2> "$CONTENT/rauc.log" ||
        die "the bundle does not verify against $KEYRING: $(tail -3 "$CONTENT/rauc.log")"
fi
note "$(basename "$OUTPUT"): $(du -m --apparent-size "$OUTPUT" | cut -f1) MiB ($(stat -c %s "$OUTPUT") bytes), sha256 $(sha256sum "$OUTPUT" | cut -c1-16)…"
note "upload: python -m central bundles add $OUTPUT   (or central's admin page /admin/bundles)"
