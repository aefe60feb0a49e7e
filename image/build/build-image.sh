#!/bin/bash
# Builds the Amtsklingel Raspberry Pi image (Pi 4 and Pi 5, arm64):
#   out/amtsklingel-<version>-arm64.img  + .img.bmap + .img.sha256
#
# Run as root on Debian (x86_64 or arm64):
#   ./build.sh image [--central URL [--ca FILE]] [--update-keyring FILE] [--reuse-base]
#   --central URL  central's address, built into every unit (/usr/share/amtsklingel/appliance.toml):
#                  a unit without a token then enrols by code. https:// (http:// only for loopback
#                  and .test hosts). Without it, each unit needs appliance.toml on its boot partition.
#   --ca FILE      the CA that signed central's certificate (PEM), when it is the city's own: units
#                  then trust only that CA for central. Checked with openssl before the build starts.
#   --update-keyring FILE  the CA certificate(s) (PEM) that sign the city's update bundles, built in as
#                  RAUC's keyring (/usr/share/amtsklingel/update-keyring.pem; docs/updates.md). Without
#                  it the units refuse every update bundle.
#   --reuse-base   keep out/build/base (the Debian packages, wheels and initrd) from the previous
#                  build when its inputs did not change; only the repository's files are installed
#                  anew. For iterating on systemd/, udev/, image/config/ and the appliance.
# Environment (all optional):
#   AMTSKLINGEL_CENTRAL_URL, AMTSKLINGEL_CENTRAL_CA   the same as --central and --ca
#   AMTSKLINGEL_UPDATE_KEYRING        the same as --update-keyring
#   AMTSKLINGEL_BASE=debian|raspios   base distribution (default debian; see base-*.sh)
#   AMTSKLINGEL_SUITE, AMTSKLINGEL_MIRROR, AMTSKLINGEL_SECURITY_MIRROR   archive to build from
#   AMTSKLINGEL_VERSION               image version (default: pyproject.toml's)
#   AMTSKLINGEL_OUT                   output directory (default: out/)
#   SOURCE_DATE_EPOCH                 default: the last commit's time
set -euo pipefail
HERE=$(cd "$(dirname "$(readlink -f "$0")")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
# shellcheck source=lib.sh
. "$HERE/lib.sh"

REUSE_BASE=0
CENTRAL_URL=${AMTSKLINGEL_CENTRAL_URL:-}
CENTRAL_CA=${AMTSKLINGEL_CENTRAL_CA:-}
UPDATE_KEYRING=${AMTSKLINGEL_UPDATE_KEYRING:-}
while [ $# -gt 0 ]; do
    case $1 in
        --reuse-base) REUSE_BASE=1 ;;
        --central|--ca)
            [ $# -ge 2 ] || die "$1 needs a value (try --help)"
            if [ "$1" = --central ]; then CENTRAL_URL=$2; else CENTRAL_CA=$2; fi
            shift ;;
        --update-keyring)
            [ $# -ge 2 ] || die "$1 needs a value (try --help)"
            UPDATE_KEYRING=$2; shift ;;
        --update-keyring=*) UPDATE_KEYRING=${1#*=} ;;
        --central=*) CENTRAL_URL=${1#*=} ;;
        --ca=*) CENTRAL_CA=${1#*=} ;;
        -h|--help) sed -n '2,28p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown option $1 (try --help)" ;;
    esac
    shift
done
# The built-in central settings are checked now, not after the long base step.
if [ -n "$CENTRAL_CA" ] && [ -z "$CENTRAL_URL" ]; then
    die "--ca $CENTRAL_CA without --central: the CA is for central's address, give both"
fi
[ -z "$CENTRAL_CA" ] || CENTRAL_CA=$(readlink -f -- "$CENTRAL_CA")
[ -z "$UPDATE_KEYRING" ] || UPDATE_KEYRING=$(readlink -f -- "$UPDATE_KEYRING")
if [ -n "$CENTRAL_CA$UPDATE_KEYRING" ] && ! command -v openssl >/dev/null 2>&1; then
    die "checking --ca and --update-keyring needs openssl: apt-get install openssl"
fi
if [ -n "$CENTRAL_URL$UPDATE_KEYRING" ]; then
    /usr/bin/python3 "$HERE/builtin-settings.py" check ${CENTRAL_URL:+--central "$CENTRAL_URL"} \
        ${CENTRAL_CA:+--ca "$CENTRAL_CA"} ${UPDATE_KEYRING:+--update-keyring "$UPDATE_KEYRING"} >/dev/null || exit 2
fi
need_root
START=$(date +%s)
BASE=${AMTSKLINGEL_BASE:-debian}
[ -r "$HERE/base-$BASE.sh" ] || die "AMTSKLINGEL_BASE=$BASE: no such base (debian or raspios)"
OUT=${AMTSKLINGEL_OUT:-$REPO/out}
WORK=$OUT/build
CACHE=$OUT/cache
mkdir -p "$WORK" "$CACHE/apt" "$CACHE/pypi"

need_host_tools mmdebstrap:mmdebstrap qemu-aarch64-static:qemu-user-static update-binfmts:binfmt-support \
    arch-test:arch-test mkfs.vfat:dosfstools mcopy:mtools mke2fs:e2fsprogs sfdisk:fdisk \
    bmaptool:bmap-tools zstd:zstd git:git python3:python3 mkimage:u-boot-tools mkenvimage:u-boot-tools
# pip downloads the pinned wheels and source archives (preparing a source archive's metadata
# needs setuptools and wheel).
# One import each: importing setuptools after pip trips Debian's distutils shim.
for module in pip setuptools wheel; do
    if ! /usr/bin/python3 -c "import $module" 2>/dev/null; then
        need_host_tools no-such-command:python3-pip no-such-command:python3-setuptools no-such-command:python3-wheel
        break
    fi
done
enable_binfmt

export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git -C "$REPO" log -1 --format=%ct)}
VERSION=${AMTSKLINGEL_VERSION:-$(sed -n 's/^version = "\(.*\)"$/\1/p' "$REPO/pyproject.toml")}
[ -n "$VERSION" ] || die "no version in pyproject.toml; set AMTSKLINGEL_VERSION"
COMMIT=$(git -C "$REPO" rev-parse --short=12 HEAD)
[ -z "$(git -C "$REPO" status --porcelain --untracked-files=no -- appliance protocol systemd udev image)" ] || COMMIT="$COMMIT-dirty"
NAME=amtsklingel-$VERSION-arm64
[ "$BASE" = debian ] || NAME=amtsklingel-$VERSION-$BASE-arm64
IMG=$OUT/$NAME.img

# shellcheck source=base-debian.sh
. "$HERE/base-$BASE.sh"
base_packages "$HERE"

say "Amtsklingel image $NAME ($BASE $SUITE, commit $COMMIT, SOURCE_DATE_EPOCH=$SOURCE_DATE_EPOCH)"
note "central: ${CENTRAL_URL:-none built in (each unit needs appliance.toml with central_url on its boot partition)}${CENTRAL_CA:+, CA $CENTRAL_CA}"
if [ -n "$UPDATE_KEYRING" ]; then
    note "update keyring: $UPDATE_KEYRING"
else
    note "WARNING: no --update-keyring: the units will refuse every update bundle (docs/updates.md says how the city makes its keys)"
fi
export AMTSKLINGEL_BUILD_DIR=$HERE AMTSKLINGEL_REPO=$REPO AMTSKLINGEL_CACHE=$CACHE
export AMTSKLINGEL_PYPI_LIST=${PYPI_LIST:+$HERE/$PYPI_LIST}
export AMTSKLINGEL_PYPI_SOURCE_LIST=${PYPI_SOURCE_LIST:+$HERE/$PYPI_SOURCE_LIST}
export AMTSKLINGEL_IMAGE_VERSION=$VERSION AMTSKLINGEL_COMMIT=$COMMIT AMTSKLINGEL_BASE=$BASE AMTSKLINGEL_SUITE_NAME=$SUITE
export AMTSKLINGEL_KERNEL_FLAVOUR=$KERNEL_FLAVOUR
export AMTSKLINGEL_CENTRAL_URL=$CENTRAL_URL AMTSKLINGEL_CENTRAL_CA=$CENTRAL_CA AMTSKLINGEL_UPDATE_KEYRING=$UPDATE_KEYRING

# ---- 1. The base root file system: Debian packages, wheels, initrd ---------------------------------
# Its inputs; a change to any of them rebuilds the base even with --reuse-base.
BASE_KEY=$(cat "$HERE/base-debian.sh" "$HERE/base-$BASE.sh" "$HERE/packages.txt" "$HERE/packages-build.txt" "$HERE/initramfs-modules" \
               "$HERE/hooks/"* ${PYPI_LIST:+"$HERE/$PYPI_LIST"} ${PYPI_SOURCE_LIST:+"$HERE/$PYPI_SOURCE_LIST"} | sha256sum | cut -c1-16)
BASE_KEY="$BASE_KEY ${APT_SOURCES[*]}"
if [ "$REUSE_BASE" = 1 ] && [ -d "$WORK/base" ] && [ "$(cat "$WORK/base.key" 2>/dev/null)" = "$BASE_KEY" ]; then
    say "1/3 Reusing the base root file system in $WORK/base (--reuse-base)"
else
    say "1/3 Base root file system: mmdebstrap $SUITE arm64, ${#PACKAGES[@]} packages (this is the long step)"
    T0=$(date +%s)
    # An interrupted earlier build can leave /proc, /sys or /dev mounted inside: never delete through them.
    if findmnt -rno TARGET | grep -q "^$WORK/"; then
        findmnt -rno TARGET | grep "^$WORK/" | sort -r | xargs -r umount -l
    fi
    rm -rf --one-file-system "$WORK/base" "$WORK/base.key"
    if [ -n "$PYPI_LIST" ]; then
        # Downloaded once: the hashes in the list pin the files.
        have=$(cd "$CACHE/pypi" && sha256sum ./* 2>/dev/null || true)
        absent=$(list_file "$HERE/$PYPI_LIST" ${PYPI_SOURCE_LIST:+"$HERE/$PYPI_SOURCE_LIST"} |
                  sed -n 's/.*--hash=sha256:\([0-9a-f]*\).*/\1/p' |
                  while read -r h; do [[ $have == *"$h "* ]] || echo "$h"; done)
        if [ -n "$absent" ]; then
            note "downloading pinned PyPI packages into $CACHE/pypi"
            /usr/bin/python3 -m pip download -q --no-deps --require-hashes --dest "$CACHE/pypi" \
                --only-binary=:all: --python-version 3.13 --implementation cp --abi cp313 --abi abi3 --abi none \
                --platform manylinux_2_28_aarch64 --platform manylinux_2_17_aarch64 --platform manylinux2014_aarch64 \
                -r "$HERE/$PYPI_LIST"
            [ -z "$PYPI_SOURCE_LIST" ] || /usr/bin/python3 -m pip download -q --no-deps --require-hashes \
                --no-binary=:all: --no-build-isolation --dest "$CACHE/pypi" -r "$HERE/$PYPI_SOURCE_LIST"
        fi
    fi
    # The apt cache recipe of mmdebstrap(1): .debs synced in before and out after the installation.
    mmdebstrap --mode=root --variant=apt --arch=arm64 --format=directory \
        --components="${COMPONENTS// /,}" --keyring="$KEYRING" \
        --aptopt='APT::Install-Recommends "false"' --aptopt='Acquire::Retries "5"' \
        --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*' \
        --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
        --include="$(IFS=,; echo "${PACKAGES[*]}")" \
        --skip=download/empty --skip=essential/unlink \
        --setup-hook='mkdir -p "$1"/var/cache/apt/archives' \
        --setup-hook="sync-in $CACHE/apt /var/cache/apt/archives/" \
        --essential-hook="$HERE/hooks/essential.sh" \
        --customize-hook="sync-out /var/cache/apt/archives $CACHE/apt" \
        --customize-hook="$HERE/hooks/base.sh" \
        "$SUITE" "$WORK/base" "${APT_SOURCES[@]}"
    echo "$BASE_KEY" > "$WORK/base.key"
    note "base done in $(( $(date +%s) - T0 )) s"
fi

# ---- 2. The repository's part: appliance, units, rules, configuration ----------------------------
say "2/3 Installing the appliance and the repository's configuration"
rm -rf --one-file-system "$WORK/rootfs"
cp -a "$WORK/base" "$WORK/rootfs"
"$HERE/customize.sh" "$WORK/rootfs"

# ---- 3. Disk image ---------------------------------------------------------------------------
say "3/3 Assembling $IMG"
"$HERE/assemble.sh" "$WORK/rootfs" "$IMG"

say "Done in $(( $(date +%s) - START )) s: $IMG (+ .bmap, .sha256)"
note "flash: bmaptool copy $IMG /dev/sdX   test: ./build.sh image-test"
