#!/bin/bash
# What update-test.sh installs, made in DIR (update-test/ in $AMTSKLINGEL_OUT), in two steps:
#   update-test-build.sh image DIR     keys/ (throwaway: the city's and a stranger's) and image N
#                                      (./build.sh image --reuse-base with this test's central and
#                                      keyring built in); versions-n.env names them
#   update-test-build.sh bundles DIR   the bundles N+1, N+2, N+3 (./build.sh bundle from a copy of N's
#                                      root file system), a corrupt and a stranger's small bundle;
#                                      versions.env names them (written last: the test waits for it)
# update-test.sh runs the second while image N boots.
set -euo pipefail
HERE=$(cd "$(dirname "$(readlink -f "$0")")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
# shellcheck source=lib.sh
. "$HERE/lib.sh"
[ $# -eq 2 ] && [[ $1 == image || $1 == bundles ]] || die "usage: update-test-build.sh image|bundles DIR"
STEP=$1 W=$2
OUT=${AMTSKLINGEL_OUT:-$REPO/out}
PYTHON=$REPO/.venv/bin/python
mkdir -p "$W"
rm -f "$W/versions.env" "$W/versions.env.part"
[ "$STEP" = bundles ] || rm -f "$W/versions-n.env"
version_of() {
    (cd "$REPO" && "$PYTHON" -c 'import pathlib, sys
from appliance.fleet.image import software_version
print(software_version(pathlib.Path(sys.argv[1])))' "$1")
}
R=$OUT/build/rootfs

if [ "$STEP" = image ]; then
# ---- keys ------------------------------------------------------------------------------------
if [ ! -r "$W/keys/city-signing.key" ] || [ ! -r "$W/keys/stranger-signing.key" ]; then
    say "Throwaway update keys in $W/keys"
    rm -rf "$W/keys"
    (cd "$REPO" && "$PYTHON" -c "
import sys
from pathlib import Path
from tests.rauc_bundles import make_keys
for name in ('city', 'stranger'):
    make_keys(Path(sys.argv[1]), name)
" "$W/keys")
fi

# ---- image N ---------------------------------------------------------------------------------
say "Image N: --central http://central.amtsklingel.test:8080 --update-keyring $W/keys/city-ca.pem"
AMTSKLINGEL_OUT=$OUT "$HERE/build-image.sh" --reuse-base --central http://central.amtsklingel.test:8080 \
    --update-keyring "$W/keys/city-ca.pem" > "$W/build-n.log" 2>&1 ||
    die "the image build failed: $(tail -5 "$W/build-n.log")"
IMG=$(ls -t "$OUT"/amtsklingel-*-arm64.img | head -1)
V_N=$(version_of "$R")
note "image N: $(basename "$IMG"), version $V_N"
printf 'IMG=%s\nV_N=%s\n' "$IMG" "$V_N" > "$W/versions-n.env"
exit 0
fi

# ---- the bundles ---------------------------------------------------------------------------------
KEYS=(--cert "$W/keys/city-signing.pem" --key "$W/keys/city-signing.key" --keyring "$W/keys/city-ca.pem")
BASE_VERSION=$(sed -n 's/^IMAGE_VERSION=//p' "$R/usr/lib/amtsklingel/image-release")
SOURCE_DATE_EPOCH=$(sed -n 's/^SOURCE_DATE_EPOCH=//p' "$R/usr/lib/amtsklingel/image-release")

# ---- N+1: one Debian package different ----------------------------------------------------------
C=$W/rootfs
say "N+1: a copy of N's root file system with one Debian package more"
rm -rf --one-file-system "$C"
cp -a "$R" "$C"
enable_binfmt
mount -t proc proc "$C/proc"
mount --bind /dev "$C/dev"
trap 'umount "$C/proc" "$C/dev" 2>/dev/null || true' EXIT
in_copy() { chroot "$C" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C.UTF-8 HOME=/root "$@"; }
# The host's dpkg-query reads the copy's database (no emulated arm64 program per package).
installed() { dpkg-query --admindir="$C/var/lib/dpkg" -W -f='${Status}' "$1" 2>/dev/null | grep -q 'ok installed'; }
CHANGE=
# The smallest cached package the image lacks whose dependencies it has (no network here).
mapfile -t cached < <(find "$OUT/cache/apt" -maxdepth 1 -name '*.deb' -printf '%s %p\n' 2>/dev/null | sort -n | cut -d' ' -f2-)
for deb in "${cached[@]}"; do
    pkg=$(dpkg-deb -f "$deb" Package)
    installed "$pkg" && continue
    cp "$deb" "$C/tmp/change.deb"
    if in_copy dpkg -i /tmp/change.deb > "$W/dpkg.log" 2>&1; then
        CHANGE="installed $pkg $(dpkg-deb -f "$deb" Version) ($(( $(stat -c %s "$deb") >> 10 )) KiB .deb from the apt cache)"
        rm -f "$C/tmp/change.deb"
        break
    fi
    in_copy dpkg --purge --force-all "$pkg" >> "$W/dpkg.log" 2>&1 || true
    rm -f "$C/tmp/change.deb"
done
if [ -z "$CHANGE" ]; then
    # Every cached package is in the image: one small package less instead (nothing depends on these).
    for pkg in binutils python3-pkg-resources nano less; do
        installed "$pkg" || continue
        if in_copy dpkg --purge "$pkg" > "$W/dpkg.log" 2>&1; then CHANGE="removed $pkg (the apt cache has no package the image lacks)"; break; fi
    done
fi
umount "$C/proc" "$C/dev"
trap - EXIT
[ -n "$CHANGE" ] || die "found no Debian package to add or remove in the copy (see $W/dpkg.log)"
note "N+1: $CHANGE"
rm -rf "${C:?}/var/cache/apt/archives/"*.deb "$C/var/log/dpkg.log" "$C/var/log/apt"
find "$C" -xdev -newermt "@$SOURCE_DATE_EPOCH" -print0 | xargs -0r touch --no-dereference --date="@$SOURCE_DATE_EPOCH"

set_version() {
    sed -i "s/^IMAGE_VERSION=.*/IMAGE_VERSION=$1/" "$C/usr/lib/amtsklingel/image-release"
    touch --date="@$SOURCE_DATE_EPOCH" "$C/usr/lib/amtsklingel/image-release"
}
bundle() {  # bundle NAME: ./build.sh bundle of the copy as it is now
    "$HERE/bundle.sh" --rootfs "$C" --output "$W/$1.raucb" "${KEYS[@]}" > "$W/bundle-$1.log" 2>&1 ||
        die "bundling $1 failed: $(tail -5 "$W/bundle-$1.log")"
    note "$(tail -2 "$W/bundle-$1.log" | head -1 | sed 's/^ *//')"
}
set_version "$BASE_VERSION-u1"; V_N1=$(version_of "$C"); bundle n1
# N+3: the same root under another version, for the installation that is cut short.
set_version "$BASE_VERSION-u3"; V_N3=$(version_of "$C"); bundle n3

# ---- N+2: its kiosk page answers 503, so its trial boot fails the kiosk_page check ------------------
say "N+2: the kiosk page broken on purpose"
KIOSK_INIT=$C/usr/lib/amtsklingel/python/appliance/kiosk/__init__.py
grep -q '^    security.init_app(app)$' "$KIOSK_INIT" || die "cannot find where to break the kiosk page in $KIOSK_INIT"
sed -i 's/^    security.init_app(app)$/&\n    app.before_request(lambda: ("broken on purpose by the update test", 503))/' "$KIOSK_INIT"
rm -f "$(dirname "$KIOSK_INIT")"/__pycache__/__init__.*.pyc
touch --date="@$SOURCE_DATE_EPOCH" "$KIOSK_INIT" "$(dirname "$KIOSK_INIT")" "$(dirname "$KIOSK_INIT")/__pycache__"
set_version "$BASE_VERSION-u2"; V_N2=$(version_of "$C"); bundle n2

# ---- bundles the unit must refuse: small, as they are never installed ---------------------------------
V_CORRUPT="$BASE_VERSION-corrupt" V_STRANGER="$BASE_VERSION-stranger"
(cd "$REPO" && "$PYTHON" - "$W" "$V_CORRUPT" "$V_STRANGER" <<'PY'
import shutil
import sys
from pathlib import Path
from tests.rauc_bundles import Keys, make_bundle
w, corrupt, stranger = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
def keys(name):
    return Keys(w / "keys" / f"{name}-ca.pem", w / "keys" / f"{name}-signing.pem", w / "keys" / f"{name}-signing.key")
shutil.rmtree(w / "small", ignore_errors=True)
good = make_bundle(w / "small", keys("city"), corrupt, name="corrupt")
# One byte in the first block of the payload (the squashfs superblock), which RAUC must read:
# the signature still holds (it covers the manifest and the hash tree's root), the hash tree does not.
data = bytearray(good.read_bytes())
data[1000] ^= 0x01
(w / "corrupt.raucb").write_bytes(data)
make_bundle(w / "small", keys("stranger"), stranger, name="stranger").rename(w / "stranger.raucb")
PY
)
cat > "$W/versions.env.part" <<ENV
V_N1=$V_N1
V_N2=$V_N2
V_N3=$V_N3
V_CORRUPT=$V_CORRUPT
V_STRANGER=$V_STRANGER
B_N1=$W/n1.raucb
B_N2=$W/n2.raucb
B_N3=$W/n3.raucb
B_CORRUPT=$W/corrupt.raucb
B_STRANGER=$W/stranger.raucb
CHANGE="$CHANGE"
ENV
mv "$W/versions.env.part" "$W/versions.env"
