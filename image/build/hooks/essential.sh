#!/bin/bash
# mmdebstrap essential hook ($1 = root directory), before the image's packages are installed.
set -euo pipefail
R=$1
# Every kernel, firmware and udev package would rebuild the initrd, each taking minutes under
# qemu-user: update-initramfs is a no-op until base.sh runs it once at the end.
chroot "$R" dpkg-divert --quiet --local --rename --add /usr/sbin/update-initramfs
mkdir -p "$R/usr/sbin"
printf '#!/bin/sh\n# diverted while the image is built (image/build/hooks/essential.sh)\nexit 0\n' > "$R/usr/sbin/update-initramfs"
chmod 755 "$R/usr/sbin/update-initramfs"
# raspi-firmware's hooks copy kernel and firmware here; the image's boot partition is made
# separately (assemble.sh), so this only has to exist (it is the boot partition's mount point).
mkdir -p "$R/boot/firmware"
