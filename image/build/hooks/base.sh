#!/bin/bash
# mmdebstrap customize hook ($1 = root directory) for the base root file system: the Python
# environment with what Debian lacks, and the initrd built once. Runs on the build host; programs in
# the chroot run through qemu-user.
set -euo pipefail
R=$1
HERE=$AMTSKLINGEL_BUILD_DIR
# shellcheck source=../lib.sh
. "$HERE/lib.sh"
in_chroot() {
    chroot "$R" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C.UTF-8 HOME=/root \
        DEBIAN_FRONTEND=noninteractive SOURCE_DATE_EPOCH="$SOURCE_DATE_EPOCH" "$@"
}

# The appliance's own environment: Debian's Python packages through --system-site-packages, plus
# pinned wheels for what Debian lacks. No pip inside (nothing installs at run time).
say "base: Python environment /usr/lib/amtsklingel/venv"
in_chroot python3 -m venv --without-pip --system-site-packages /usr/lib/amtsklingel/venv
if [ -n "${AMTSKLINGEL_PYPI_LIST:-}" ]; then
    # pip (and, for source archives, a compiler) only while this runs: packages-build.txt.
    mapfile -t build_pkgs < <(list_file "$HERE/packages-build.txt")
    note "temporarily installing ${build_pkgs[*]}"
    in_chroot apt-get install -y -q --no-install-recommends "${build_pkgs[@]}" >/dev/null
    mkdir -p "$R/tmp/pypi" "$R/tmp/wheels"
    cp "$AMTSKLINGEL_CACHE/pypi/"* "$R/tmp/pypi/"
    mapfile -t reqs < <(list_file "$AMTSKLINGEL_PYPI_LIST" ${AMTSKLINGEL_PYPI_SOURCE_LIST:+"$AMTSKLINGEL_PYPI_SOURCE_LIST"} | awk '{print $1}')
    if [ -n "${AMTSKLINGEL_PYPI_SOURCE_LIST:-}" ]; then
        cp "$AMTSKLINGEL_PYPI_SOURCE_LIST" "$R/tmp/pypi-source.txt"
        # PYPI=1: lgpio links its C library statically instead of expecting liblgpio on the system.
        # CFLAGS=-g0: no debug information, which would carry pip's random build directory into the
        # library (and through the build ID into every byte of it): the wheel builds the same twice.
        in_chroot env PYPI=1 CFLAGS=-g0 python3 -m pip wheel -q --no-index --no-deps --no-build-isolation \
            --find-links /tmp/pypi --require-hashes -r /tmp/pypi-source.txt --wheel-dir /tmp/wheels
    fi
    in_chroot /usr/lib/amtsklingel/venv/bin/python -m pip install -q --no-index --no-deps --no-compile \
        --find-links /tmp/pypi --find-links /tmp/wheels "${reqs[@]}"
    in_chroot apt-get purge -y -q --auto-remove "${build_pkgs[@]}" >/dev/null
    rm -rf "$R/tmp/pypi" "$R/tmp/wheels" "$R/tmp/pypi-source.txt" "$R/root/.cache"
    note "installed: ${reqs[*]}"
fi

say "base: initrd (once, MODULES=list)"
rm -f "$R/usr/sbin/update-initramfs"
in_chroot dpkg-divert --quiet --local --rename --remove /usr/sbin/update-initramfs
sed -i 's/^MODULES=.*/MODULES=list/' "$R/etc/initramfs-tools/initramfs.conf"
{ echo "# image/build/initramfs-modules"; list_file "$HERE/initramfs-modules"; } > "$R/etc/initramfs-tools/modules"
in_chroot update-initramfs -c -k all
ls -l "$R"/boot/
