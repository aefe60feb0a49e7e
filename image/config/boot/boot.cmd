# Amtsklingel: which root slot boots, with RAUC's boot counting (docs/decisions/0006-ab-boot-with-u-boot.md).
# image/build/assemble.sh compiles this into boot.scr (mkimage -T script) on the boot partition. The
# same script runs on the Raspberry Pi (the firmware starts Debian's u-boot-rpi, config.txt) and in
# QEMU (u-boot-qemu as -bios): U-Boot's distro boot or bootstd finds boot.scr on partition 1 and sets
# devtype and devnum (mmc 0, usb 0, virtio 0, ...).
#
# Disk: 1 boot (FAT: this script, boot-slots.env, bootargs.txt), 2 slot A, 3 slot B (ext4 roots, each
# with /boot/vmlinuz and /boot/initrd.img).
# boot-slots.env holds RAUC's variables and nothing else: BOOT_ORDER ("A B" or "B A"), BOOT_A_LEFT and
# BOOT_B_LEFT (tries left), in U-Boot's checksummed environment format (0x4000 bytes, mkenvimage,
# env export -c). Linux reads and writes it with fw_printenv/fw_setenv (/etc/fw_env.config), RAUC
# through its uboot backend: "rauc install" puts the new slot first with 3 tries, "rauc status
# mark-good" tops the booted slot up to 3, mark-bad sets it to 0. It is not named uboot.env: that is
# U-Boot's own environment file on the Pi, which would replace U-Boot's whole default environment.
#
# Each boot: the first slot in BOOT_ORDER with tries left is chosen, its count goes down by one and
# the file is written back BEFORE the kernel starts, so a boot that never reaches mark-good (panic,
# hang and watchdog, power cut, failed health check) uses up a try; with none left the next slot in
# BOOT_ORDER boots. When no slot has tries left, all are reset to 3 and the first boots again.

echo "Amtsklingel boot script on ${devtype} ${devnum}"
setenv amtsklingel_boot "${devtype} ${devnum}:1"

# Room for Debian's uncompressed arm64 kernel (about 38 MB, booti may move it up to the next 2 MiB):
# the Pi's default ramdisk_addr_r lies only 38 MB above its kernel_addr_r. Everything is placed
# relative to kernel_addr_r, which is RAM on every board (0x80000 on the Pi, 0x40400000 in QEMU).
setexpr kernel_comp_addr_r ${kernel_addr_r} + 0x6000000
setenv kernel_comp_size 0x4000000
setexpr ramdisk_addr_r ${kernel_addr_r} + 0xa000000
setexpr amtsklingel_env_addr ${kernel_addr_r} + 0x6000000
# booti gives Linux a copy of the device tree with room for its additions (/chosen, memory). The Pi's
# U-Boot would otherwise change its own device tree in place (fdt_high=all ones), growing it over
# whatever follows it in memory.
setenv fdt_high

# ---- the slot variables ---------------------------------------------------------------------------
setenv BOOT_ORDER
setenv BOOT_A_LEFT
setenv BOOT_B_LEFT
if load ${devtype} ${devnum}:1 ${amtsklingel_env_addr} boot-slots.env; then
    env import -c ${amtsklingel_env_addr} 0x4000 BOOT_ORDER BOOT_A_LEFT BOOT_B_LEFT
fi
# A missing or damaged file (bad checksum): start again as a new image does.
test -n "${BOOT_ORDER}" || setenv BOOT_ORDER "A B"
test -n "${BOOT_A_LEFT}" || setenv BOOT_A_LEFT 3
test -n "${BOOT_B_LEFT}" || setenv BOOT_B_LEFT 3
echo "Amtsklingel slots: order ${BOOT_ORDER}, tries left A ${BOOT_A_LEFT}, B ${BOOT_B_LEFT}"

# ---- choose: RAUC's documented boot counting -----------------------------------------------------
setenv amtsklingel_slot
for BOOT_SLOT in ${BOOT_ORDER}; do
    if test -n "${amtsklingel_slot}"; then
        true
    elif test "${BOOT_SLOT}" = "A" && test ${BOOT_A_LEFT} -gt 0; then
        setexpr BOOT_A_LEFT ${BOOT_A_LEFT} - 1
        setenv amtsklingel_slot A
        setenv amtsklingel_part 2
    elif test "${BOOT_SLOT}" = "B" && test ${BOOT_B_LEFT} -gt 0; then
        setexpr BOOT_B_LEFT ${BOOT_B_LEFT} - 1
        setenv amtsklingel_slot B
        setenv amtsklingel_part 3
    fi
done
if test -z "${amtsklingel_slot}"; then
    echo "Amtsklingel: no slot has tries left; resetting both to 3 and booting the first in ${BOOT_ORDER}"
    setenv BOOT_A_LEFT 3
    setenv BOOT_B_LEFT 3
    for BOOT_SLOT in ${BOOT_ORDER}; do
        if test -n "${amtsklingel_slot}"; then
            true
        elif test "${BOOT_SLOT}" = "B"; then
            setexpr BOOT_B_LEFT ${BOOT_B_LEFT} - 1
            setenv amtsklingel_slot B
            setenv amtsklingel_part 3
        else
            setexpr BOOT_A_LEFT ${BOOT_A_LEFT} - 1
            setenv amtsklingel_slot A
            setenv amtsklingel_part 2
        fi
    done
fi
setenv BOOT_SLOT

# The try is counted before anything of the slot runs.
env export -c -s 0x4000 ${amtsklingel_env_addr} BOOT_ORDER BOOT_A_LEFT BOOT_B_LEFT
if fatwrite ${devtype} ${devnum}:1 ${amtsklingel_env_addr} boot-slots.env 0x4000; then
    echo "Amtsklingel: booting slot ${amtsklingel_slot} (tries left now A ${BOOT_A_LEFT}, B ${BOOT_B_LEFT})"
else
    echo "Amtsklingel: WARNING could not write boot-slots.env; this try is not counted"
fi

# ---- the command line ----------------------------------------------------------------------------
# bootargs.txt on the boot partition: one line "amtsklingel_bootargs=..." (the image's console, quiet,
# panic=10, ...; the boot test adds its own there).
setenv amtsklingel_bootargs
if load ${devtype} ${devnum}:1 ${amtsklingel_env_addr} bootargs.txt; then
    env import -t ${amtsklingel_env_addr} ${filesize} amtsklingel_bootargs
fi
part uuid ${devtype} ${devnum}:${amtsklingel_part} amtsklingel_partuuid
setenv bootargs "root=PARTUUID=${amtsklingel_partuuid} rauc.slot=${amtsklingel_slot} ${amtsklingel_bootargs}"
echo "Amtsklingel: command line: ${bootargs}"

# ---- kernel and initrd from the slot's own root file system --------------------------------------
if load ${devtype} ${devnum}:${amtsklingel_part} ${kernel_addr_r} /boot/vmlinuz; then
    if load ${devtype} ${devnum}:${amtsklingel_part} ${ramdisk_addr_r} /boot/initrd.img; then
        booti ${kernel_addr_r} ${ramdisk_addr_r}:${filesize} ${fdtcontroladdr}
    fi
fi
# Only reached when the slot cannot be loaded or started: that try is already used up, so the next
# start counts down further until the other slot's turn comes.
echo "Amtsklingel: slot ${amtsklingel_slot} could not be started; restarting in 3 s"
sleep 3
reset
