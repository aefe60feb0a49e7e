# The Debian base (default): everything from Debian's own archive, the mainline arm64 kernel with
# the Pi's device trees, Debian's raspi-firmware. Sourced by build-image.sh and check-base.py (after
# lib.sh), and by base-raspios.sh, which adds the Raspberry Pi archive to all of this.
# shellcheck shell=bash disable=SC2034
SUITE=${AMTSKLINGEL_SUITE:-trixie}
MIRROR=${AMTSKLINGEL_MIRROR:-http://deb.debian.org/debian}
SECURITY_MIRROR=${AMTSKLINGEL_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
COMPONENTS="main non-free-firmware"
KEYRING=${AMTSKLINGEL_DEBIAN_KEYRING:-/usr/share/keyrings/debian-archive-keyring.gpg}
# Security fixes (Chromium above all) arrive through -security and -updates; for a bit-exact rebuild
# of an old image point AMTSKLINGEL_MIRROR at snapshot.debian.org and set AMTSKLINGEL_SECURITY_MIRROR=none.
APT_SOURCES=("deb [signed-by=$KEYRING] $MIRROR $SUITE $COMPONENTS"
             "deb [signed-by=$KEYRING] $MIRROR $SUITE-updates $COMPONENTS")
[ "$SECURITY_MIRROR" = none ] || APT_SOURCES+=("deb [signed-by=$KEYRING] $SECURITY_MIRROR $SUITE-security $COMPONENTS")
BASE_PACKAGES=()
PACKAGES_DROP=()
PYPI_LIST=pypi.txt
# Boot files: the mainline kernel boots with upstream device trees (bcm2711-rpi-4-b.dtb, ...).
KERNEL_FLAVOUR=upstream
PYPI_SOURCE_LIST=pypi-source.txt
