#!/bin/bash
# Makes a root slot's ext4 file system from a finished root file system tree, reproducibly: the same
# tree, version and SOURCE_DATE_EPOCH give the same bytes. assemble.sh writes it into slot A of the
# disk image and bundle.sh puts the very same file into the update bundle.
#   rootfs-ext4.sh ROOTFS OUT.ext4
# Environment: SOURCE_DATE_EPOCH, AMTSKLINGEL_IMAGE_VERSION (required; they seed the file system's
# UUID), AMTSKLINGEL_ROOT_MB (the slot's size, default 3072).
set -euo pipefail
HERE=$(cd "$(dirname "$(readlink -f "$0")")" && pwd)
# shellcheck source=lib.sh
. "$HERE/lib.sh"
[ $# -eq 2 ] || die "usage: rootfs-ext4.sh ROOTFS OUT.ext4"
R=$1 OUT=$2
: "${SOURCE_DATE_EPOCH:?}" "${AMTSKLINGEL_IMAGE_VERSION:?}"
ROOT_MB=${AMTSKLINGEL_ROOT_MB:-3072}
ROOT_UUID=$(seed_uuid "amtsklingel $AMTSKLINGEL_IMAGE_VERSION $SOURCE_DATE_EPOCH root")

used=$(du -sm --apparent-size "$R" | cut -f1)
note "root file system: $used MiB used of a $ROOT_MB MiB slot"
[ "$used" -lt $((ROOT_MB * 85 / 100)) ] || die "root file system ($used MiB) too big for a $ROOT_MB MiB slot"
rm -f "$OUT"
# 4 KiB blocks: also the block size of RAUC's adaptive block hash index.
E2FSPROGS_FAKE_TIME=$SOURCE_DATE_EPOCH mke2fs -q -F -t ext4 -b 4096 -m 0 -L rootfs -U "$ROOT_UUID" \
    -E "root_owner=0:0,hash_seed=$ROOT_UUID" -d "$R" "$OUT" "${ROOT_MB}M"
# mke2fs -d copies each file's change time (the moment this build copied it) and access time into
# the image; e2fsprogs 1.47.1 clamps them to SOURCE_DATE_EPOCH, older ones do not. debugfs sets
# ctime, atime and crtime of every file to SOURCE_DATE_EPOCH, with any e2fsprogs (modification
# times are already clamped). About 10,000 files a second.
if (cd "$R" && find . -name '*"*' -print -quit | grep -q .); then
    die "a file name in the root file system contains a double quote; debugfs cannot name it"
fi
TIMES=$(mktemp "${OUT}.times.XXXXXX")
trap 'rm -f "$TIMES" "$TIMES.log"' EXIT
(cd "$R" && find . -mindepth 1 | LC_ALL=C sort | sed 's|^\.||' | { echo '/'; cat; } |
    awk -v t="@$SOURCE_DATE_EPOCH" '{ for (f = 1; f <= 3; f++) printf "sif \"%s\" %s %s\n", $0, (f == 1 ? "ctime" : f == 2 ? "atime" : "crtime"), t }') \
    > "$TIMES"
E2FSPROGS_FAKE_TIME=$SOURCE_DATE_EPOCH debugfs -w -f "$TIMES" "$OUT" > /dev/null 2> "$TIMES.log" ||
    die "debugfs could not set the file times: $(head -3 "$TIMES.log")"
if grep -v '^debugfs [0-9]' "$TIMES.log" | grep -q .; then
    die "debugfs: $(grep -v '^debugfs [0-9]' "$TIMES.log" | head -3)"
fi
