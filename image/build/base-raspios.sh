# The Raspberry Pi OS base: Debian's arm64 archive plus the Raspberry Pi archive, which carries the
# Raspberry Pi kernel (ISP, hardware H.264 encoder, Pi 5 RP1 drivers), python3-picamera2 and
# python3-lgpio/gpiozero 2: the full camera stack of the Pi 4 and Pi 5. Sourced by build-image.sh.
#
# Written, not built on the project's machines (they reach only Debian's archive). To build it:
#   - get the archive key from the raspberrypi-archive-keyring package (on a Pi:
#     /usr/share/keyrings/raspberrypi-archive-keyring.gpg) and set AMTSKLINGEL_RASPIOS_KEYRING to it;
#   - AMTSKLINGEL_BASE=raspios ./build.sh image  (suite: AMTSKLINGEL_SUITE=bookworm|trixie)
# shellcheck shell=bash disable=SC2034
SUITE=${AMTSKLINGEL_SUITE:-trixie}
MIRROR=${AMTSKLINGEL_MIRROR:-http://deb.debian.org/debian}
SECURITY_MIRROR=${AMTSKLINGEL_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
RPI_MIRROR=${AMTSKLINGEL_RASPIOS_MIRROR:-http://archive.raspberrypi.com/debian}
RPI_KEYRING=${AMTSKLINGEL_RASPIOS_KEYRING:-/usr/share/keyrings/raspberrypi-archive-keyring.gpg}
[ -r "$RPI_KEYRING" ] || die "Raspberry Pi OS base: archive key $RPI_KEYRING missing (set AMTSKLINGEL_RASPIOS_KEYRING)"
COMPONENTS="main contrib non-free non-free-firmware"
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
APT_SOURCES=("deb [signed-by=$KEYRING] $MIRROR $SUITE $COMPONENTS"
             "deb [signed-by=$KEYRING] $MIRROR $SUITE-updates $COMPONENTS"
             "deb [signed-by=$RPI_KEYRING] $RPI_MIRROR $SUITE main")
[ "$SECURITY_MIRROR" = none ] || APT_SOURCES+=("deb [signed-by=$KEYRING] $SECURITY_MIRROR $SUITE-security $COMPONENTS")
# The Pi kernels (v8: Pi 4, 2712: Pi 5) replace linux-image-arm64; the archive's own raspi-firmware,
# picamera2 and lgpio replace what pypi.txt brings for the Debian base.
BASE_PACKAGES=(raspberrypi-archive-keyring linux-image-rpi-v8 linux-image-rpi-2712 python3-picamera2
               python3-gpiozero python3-lgpio)
PACKAGES_DROP=(linux-image-arm64 python3-colorzero)
# bookworm's systemd (252) carries systemd-repart itself.
[ "$SUITE" != bookworm ] || PACKAGES_DROP+=(systemd-repart)
PYPI_LIST=pypi.txt
PYPI_SOURCE_LIST=
# Boot files: Raspberry Pi kernels with the downstream device trees and overlays.
KERNEL_FLAVOUR=raspberrypi
