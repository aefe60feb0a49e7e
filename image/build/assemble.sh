#!/bin/bash
# Assembles the disk image from a finished root file system, without mounting anything (the build
# host needs no vfat/ext4 kernel modules): mkfs.vfat -C + mcopy, mke2fs -d, sfdisk, dd.
#   assemble.sh ROOTFS IMAGE
#
# Layout (GPT; partitions are found by name, PARTLABEL=, in image/config/fstab):
#   1  boot      FAT32  256 MiB  Pi firmware, device trees, config.txt, U-Boot (u-boot.bin) and its own
#                                uboot.env, its boot script boot.scr, the slot variables boot-slots.env,
#                                bootargs.txt
#   2  rootfs-a  ext4   3 GiB    slot A: read-only root file system with its own kernel and initrd
#                                (/boot/vmlinuz, /boot/initrd.img)
#   3  rootfs-b  -      3 GiB    slot B: empty; RAUC installs the next version here
#   4  data      ext4   64 MiB-1 GiB  identity and settings; not in the image: systemd-repart creates and
#                                formats it on the first boot in the free space left at the end
#                                (image/config/repart.d), after grow-disk moved the backup GPT to the
#                                end of the card
# The firmware starts U-Boot; U-Boot runs boot.scr (image/config/boot/boot.cmd), which picks the slot
# with RAUC's boot counting and loads that slot's kernel (docs/decisions/0006-ab-boot-with-u-boot.md).
# The Pi 4 boots from GPT with a bootloader EEPROM from 2020-09 or later (every Pi 4 sold since
# 2021; older ones: update the EEPROM with Raspberry Pi Imager); the Pi 5 always does.
set -euo pipefail
HERE=$(cd "$(dirname "$(readlink -f "$0")")" && pwd)
# shellcheck source=lib.sh
. "$HERE/lib.sh"
R=$1 IMG=$2
WORK=$(dirname "$R")
: "${SOURCE_DATE_EPOCH:?}" "${AMTSKLINGEL_IMAGE_VERSION:?}"
BOOT_MB=${AMTSKLINGEL_BOOT_MB:-256}
ROOT_MB=${AMTSKLINGEL_ROOT_MB:-3072}
DATA_MB=${AMTSKLINGEL_DATA_MB:-64}
FLAVOUR=${AMTSKLINGEL_KERNEL_FLAVOUR:-upstream}

# IDs derived from version and time, so a rebuild of the same commit gets the same ones.
SEED="amtsklingel $AMTSKLINGEL_IMAGE_VERSION $SOURCE_DATE_EPOCH"
DISK_UUID=$(seed_uuid "$SEED disk")
VOLID=$(printf '%s boot' "$SEED" | sha256sum | cut -c1-8)
P_BOOT=$(seed_uuid "$SEED part boot")
P_ROOTA=$(seed_uuid "$SEED part rootfs-a")
P_ROOTB=$(seed_uuid "$SEED part rootfs-b")
# The kernel command line after root=PARTUUID=<slot> rauc.slot=<A|B>, which the boot script adds.
BOOTARGS="console=tty1 rootfstype=ext4 ro rootwait fsck.repair=no panic=10 quiet loglevel=3 consoleblank=0 systemd.ssh_auto=no vt.global_cursor_default=0"
UBOOT=$R/usr/lib/u-boot/rpi_arm64/u-boot.bin

# ---- boot partition contents ------------------------------------------------------------------
# Shared by both slots and not updated by a bundle: firmware, device trees, U-Boot and its script.
# Each slot's kernel and initrd are in the slot's own root file system.
B=$WORK/bootfs
rm -rf "$B"; mkdir -p "$B"
[ -f "$UBOOT" ] || die "no $UBOOT in the root file system (package u-boot-rpi in packages.txt)"
case $FLAVOUR in
    upstream)
        # Debian: GPU firmware from raspi-firmware; upstream device trees of the slot's kernel (the
        # firmware hands the Pi's to U-Boot, which passes it on to Linux).
        kver=$(cd "$R/boot" && ls vmlinuz-* | sed 's/^vmlinuz-//' | sort -V | tail -1)
        [ -n "$kver" ] && [ -e "$R/boot/initrd.img-$kver" ] || die "no kernel/initrd in $R/boot"
        find "$R/usr/lib/raspi-firmware" -maxdepth 1 -type f -exec cp {} "$B/" \;
        cp "$R/usr/lib/linux-image-$kver/broadcom/"bcm27*.dtb "$B/"
        cp -r "$R/usr/lib/raspi-firmware/overlays" "$B/overlays"
        firmware_lines="upstream_kernel=1"
        ;;
    raspberrypi)
        # Raspberry Pi OS: its raspi-firmware hooks filled /boot/firmware (downstream DTBs, overlays).
        find "$R/boot/firmware" -maxdepth 1 -type f \( -name 'start*.elf' -o -name 'fixup*.dat' \
            -o -name bootcode.bin -o -name 'LICENCE*' -o -name '*.dtb' \) -exec cp {} "$B/" \;
        cp -r "$R/boot/firmware/overlays" "$B/overlays"
        kver=$(readlink "$R/boot/vmlinuz" | sed 's/^vmlinuz-//')
        firmware_lines=
        ;;
    *) die "unknown kernel flavour $FLAVOUR" ;;
esac
[ -e "$R/boot/vmlinuz" ] && [ -e "$R/boot/initrd.img" ] ||
    die "no /boot/vmlinuz and /boot/initrd.img links in the root file system (customize.sh makes them)"
cp "$UBOOT" "$B/u-boot.bin"
# U-Boot's own environment on the Pi (uboot.env, which it loads instead of its built-in one): the
# built-in values without the autoboot countdown, so no USB keyboard can stop it at U-Boot's prompt.
"$HERE/uboot-env.py" "$UBOOT" bootdelay=-2 | mkenvimage -s 0x4000 -o "$B/uboot.env" - ||
    die "could not make U-Boot's environment from $UBOOT"
# mkimage takes its time stamp from SOURCE_DATE_EPOCH.
mkimage -A arm64 -O linux -T script -C none -n "Amtsklingel A/B boot" \
    -d "$HERE/../config/boot/boot.cmd" "$B/boot.scr" > /dev/null
# A new image boots slot A first; both slots have 3 tries (RAUC's default boot-attempts).
printf 'BOOT_ORDER=A B\nBOOT_A_LEFT=3\nBOOT_B_LEFT=3\n' | mkenvimage -s 0x4000 -o "$B/boot-slots.env" -
echo "amtsklingel_bootargs=$BOOTARGS" > "$B/bootargs.txt"
cat > "$B/config.txt" <<CFG
# Amtsklingel $AMTSKLINGEL_IMAGE_VERSION (image/build/assemble.sh). The firmware starts U-Boot, which runs
# boot.scr: it picks slot A or B (boot-slots.env) and starts that slot's own kernel.
[all]
arm_64bit=1
kernel=u-boot.bin
$firmware_lines
disable_overscan=1
disable_splash=1
# The kiosk needs no serial console (it would offer a way in).
enable_uart=0
[pi4]
max_framebuffers=2
[all]
CFG
rm -rf "${R:?}/boot/firmware/"*
touch --date="@$SOURCE_DATE_EPOCH" "$R/boot/firmware"
note "boot: U-Boot + boot.scr, slot A kernel $kver, $(find "$B" -type f | wc -l) files, $(du -sm "$B" | cut -f1) MiB"
find "$B" -exec touch --no-dereference --date="@$SOURCE_DATE_EPOCH" {} +

# ---- file systems --------------------------------------------------------------------------------
rm -f "$WORK/boot.vfat" "$WORK/root.ext4"
mkfs.vfat -C -F 32 -S 512 -n BOOT -i "$VOLID" --invariant "$WORK/boot.vfat" $((BOOT_MB * 1024)) >/dev/null
# Directories, then files, each in sorted order (FAT directories keep the order entries were
# added in); mcopy -m keeps the (clamped) file times.
(cd "$B" && find . -mindepth 1 -type d | LC_ALL=C sort | sed 's|^\./||' |
    while read -r dir; do mmd -i "$WORK/boot.vfat" "::/$dir"; done)
(cd "$B" && find . -type f | LC_ALL=C sort | sed 's|^\./||' |
    while read -r file; do mcopy -i "$WORK/boot.vfat" -m -Q "$file" "::/$file"; done)
# The same script makes the root file system of an update bundle (bundle.sh).
AMTSKLINGEL_ROOT_MB=$ROOT_MB "$HERE/rootfs-ext4.sh" "$R" "$WORK/root.ext4"

# ---- partition table and image --------------------------------------------------------------------
START_MB=4
ROOTA_MB=$((START_MB + BOOT_MB)); ROOTB_MB=$((ROOTA_MB + ROOT_MB)); DATA_AT_MB=$((ROOTB_MB + ROOT_MB))
# Free space for the data partition (so that even a card of exactly the image's size gets one),
# then the backup GPT.
TOTAL_MB=$((DATA_AT_MB + DATA_MB + 1))
rm -f "$IMG" "$IMG.bmap" "$IMG.sha256"
truncate -s "${TOTAL_MB}M" "$IMG"
# Generic Linux data type for the roots (not the arm64 root type): systemd's GPT auto-discovery
# must never pick a slot by itself.
sfdisk --quiet --no-reread --no-tell-kernel "$IMG" <<TABLE
label: gpt
label-id: $DISK_UUID
unit: sectors
first-lba: 2048

start=$((START_MB * 2048)), size=$((BOOT_MB * 2048)), type=EBD0A0A2-B9E5-4433-87C0-68B6B72699C7, uuid=$P_BOOT, name="boot"
start=$((ROOTA_MB * 2048)), size=$((ROOT_MB * 2048)), type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, uuid=$P_ROOTA, name="rootfs-a"
start=$((ROOTB_MB * 2048)), size=$((ROOT_MB * 2048)), type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, uuid=$P_ROOTB, name="rootfs-b"
TABLE
dd if="$WORK/boot.vfat" of="$IMG" bs=1M seek=$START_MB conv=notrunc,sparse status=none
dd if="$WORK/root.ext4" of="$IMG" bs=1M seek=$ROOTA_MB conv=notrunc,sparse status=none
# Written zeros (not holes) at the start of slot B and of the data partition's place: bmaptool
# copies only what is mapped, and a reflashed card must not keep an old unit's file systems there.
dd if=/dev/zero of="$IMG" bs=1M seek=$ROOTB_MB count=1 conv=notrunc status=none
dd if=/dev/zero of="$IMG" bs=1M seek=$DATA_AT_MB count=1 conv=notrunc status=none
rm -f "$WORK/boot.vfat" "$WORK/root.ext4"
touch --date="@$SOURCE_DATE_EPOCH" "$IMG"

bmaptool -q create -o "$IMG.bmap" "$IMG"
(cd "$(dirname "$IMG")" && sha256sum "$(basename "$IMG")" > "$(basename "$IMG").sha256")
note "$(basename "$IMG"): $TOTAL_MB MiB, $(du -m "$IMG" | cut -f1) MiB allocated; sha256 $(cut -c1-16 "$IMG.sha256")…"
