# The Raspberry Pi OS base: the Debian base (base-debian.sh: suite, Debian's archive and key, PyPI
# lists) plus the Raspberry Pi archive, which carries the Raspberry Pi kernel (ISP, hardware H.264
# encoder, Pi 5 RP1 drivers), python3-picamera2 and python3-lgpio/gpiozero 2: the full camera stack
# of the Pi 4 and Pi 5. Sourced by build-image.sh and check-base.py (after lib.sh).
#
# Not built on the project's machines (they reach only Debian's archive). check-base.py checks its
# sources, key and package list against the archives before a build:
#   AMTSKLINGEL_BASE=raspios ./build.sh image-check
# (and tests/imagebuild/test_base_check.py against archives the test writes). To build it:
#   - get the archive key from the raspberrypi-archive-keyring package (on a Pi:
#     /usr/share/keyrings/raspberrypi-archive-keyring.gpg) and set AMTSKLINGEL_RASPIOS_KEYRING to it;
#   - AMTSKLINGEL_BASE=raspios ./build.sh image  (suite: AMTSKLINGEL_SUITE=bookworm|trixie)
# shellcheck shell=bash disable=SC2034
# shellcheck source=base-debian.sh
. "$(dirname "${BASH_SOURCE[0]}")/base-debian.sh"
RPI_MIRROR=${AMTSKLINGEL_RASPIOS_MIRROR:-http://archive.raspberrypi.com/debian}
RPI_KEYRING=${AMTSKLINGEL_RASPIOS_KEYRING:-/usr/share/keyrings/raspberrypi-archive-keyring.gpg}
[ -r "$RPI_KEYRING" ] || die "Raspberry Pi OS base: archive key $RPI_KEYRING missing (set AMTSKLINGEL_RASPIOS_KEYRING)"
APT_SOURCES+=("deb [signed-by=$RPI_KEYRING] $RPI_MIRROR $SUITE main")
# The Pi kernels (v8: Pi 4, 2712: Pi 5) replace linux-image-arm64; the archive's own raspi-firmware,
# picamera2 and lgpio replace what pypi.txt brings for the Debian base. The keyring package keeps the
# units' copy of the archive key current.
BASE_PACKAGES=(raspberrypi-archive-keyring linux-image-rpi-v8 linux-image-rpi-2712 python3-picamera2
               python3-gpiozero python3-lgpio)
PACKAGES_DROP=(linux-image-arm64 python3-colorzero)
# bookworm's systemd (252) carries systemd-repart itself.
[ "$SUITE" != bookworm ] || PACKAGES_DROP+=(systemd-repart)
PYPI_SOURCE_LIST=
# Boot files: Raspberry Pi kernels with the downstream device trees and overlays.
KERNEL_FLAVOUR=raspberrypi
