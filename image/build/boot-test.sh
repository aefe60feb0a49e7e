#!/bin/bash
# Boots the built image under qemu-system-aarch64 (-M virt, software emulation, the image's own arm64
# kernel and initrd from its boot partition) and checks it from outside, through the serial console.
#   ./build.sh image-test [IMAGE]      (default: the newest out/amtsklingel-*-arm64.img)
#
# It works on a sparse copy of the image (out/boot-test.img; the image itself stays untouched) and
# enrols it the way facilities staff do: kiosk-token and appliance.toml (fake hardware, since QEMU
# has no Pi camera, GPIO or sound card) go onto the boot partition, provisioning moves them.
# The guest gets no network at all (-nic none). Logging in is impossible by design (no passwords),
# so the kernel command line carries amtsklingel.selftest=1: the image's self-test (inert without
# the flag) checks the running system, prints "AMTSKLINGEL-SELFTEST PASS|FAIL ..." lines to the
# serial console and powers off. Afterwards the host checks the enrolment files left the boot
# partition.
# Environment: AMTSKLINGEL_BOOT_TIMEOUT (s, default 1200), AMTSKLINGEL_QEMU_GPU=0 (no virtio-gpu),
#              AMTSKLINGEL_QEMU_EXTRA (more QEMU arguments), AMTSKLINGEL_KEEP=1 (keep the copy).
set -euo pipefail
HERE=$(cd "$(dirname "$(readlink -f "$0")")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
# shellcheck source=lib.sh
. "$HERE/lib.sh"

IMG=${1:-$(ls -t "$REPO"/out/amtsklingel-*-arm64.img 2>/dev/null | head -1 || true)}
[ -n "$IMG" ] && [ -r "$IMG" ] || die "no image: run ./build.sh image first (or pass the .img)"
TIMEOUT=${AMTSKLINGEL_BOOT_TIMEOUT:-1200}
if ! command -v qemu-system-aarch64 >/dev/null || ! command -v mcopy >/dev/null || ! command -v sfdisk >/dev/null; then
    need_root
    need_host_tools qemu-system-aarch64:qemu-system-arm mcopy:mtools sfdisk:fdisk
fi

say "Boot test of $(basename "$IMG")"
if [ -r "$IMG.sha256" ]; then
    (cd "$(dirname "$IMG")" && sha256sum --quiet -c "$(basename "$IMG").sha256") || die "checksum mismatch: $IMG"
    note "checksum ok"
fi

DISK=${AMTSKLINGEL_BOOT_DISK:-$REPO/out/boot-test.img}
cp --sparse=always "$IMG" "$DISK"
T=$(mktemp -d /tmp/amtsklingel-boot-test.XXXXXX)
cleanup() {
    [ -z "${QEMU:-}" ] || kill "$QEMU" 2>/dev/null || true
    rm -rf "$T"
    [ "${AMTSKLINGEL_KEEP:-0}" = 1 ] || rm -f "$DISK"
}
trap cleanup EXIT
# Partition 1 is the boot partition; mtools works on it in place (DISK@@OFFSET), nothing is mounted.
boot_start=$(sfdisk --dump "$DISK" | sed -n 's/^[^:]*1 : start= *\([0-9]*\),.*/\1/p')
[ -n "$boot_start" ] || die "no partition 1 in $IMG"
FAT="$DISK@@$((boot_start * 512))"
mcopy -i "$FAT" "$HERE/selftest/enrol/appliance.toml" "$HERE/selftest/enrol/kiosk-token" ::/
note "enrolled: appliance.toml (fake hardware) and kiosk-token on the boot partition"
prefix=$(mtype -i "$FAT" ::config.txt | sed -n 's/^os_prefix=\(.*\)/\1/p' | tail -1 | tr -d '\r')
for f in vmlinuz initrd.img cmdline.txt; do
    mcopy -n -i "$FAT" "::${prefix}$f" "$T/$f" || die "boot partition lacks ${prefix}$f"
done
# The image's own command line (root=PARTUUID=... ro), with the console on QEMU's serial port.
CMDLINE="$(sed -e 's/console=[^ ]*//g' -e 's/\<quiet\>//' -e 's/loglevel=[0-9]//' "$T/cmdline.txt" | tr -s ' ' | sed 's/^ //')"
CMDLINE="console=ttyAMA0 $CMDLINE loglevel=4 amtsklingel.selftest=1"
note "kernel ${prefix}vmlinuz, cmdline: $CMDLINE"

LOG=${AMTSKLINGEL_BOOT_LOG:-$REPO/out/boot-test.log}
: > "$LOG"
: > "$LOG.host"
GPU=()
# A display device, so that the kiosk (cage + Chromium) has a screen to start on.
[ "${AMTSKLINGEL_QEMU_GPU:-1}" = 0 ] || GPU=(-device virtio-gpu-pci)
# shellcheck disable=SC2086
qemu-system-aarch64 -M virt -cpu cortex-a72 -m 2048 -smp 2 -display none -monitor none -no-reboot \
    -nic none -device i6300esb "${GPU[@]}" \
    -kernel "$T/vmlinuz" -initrd "$T/initrd.img" -append "$CMDLINE" \
    -drive "file=$DISK,format=raw,if=virtio" \
    -chardev "file,id=serial0,path=$LOG" -serial chardev:serial0 ${AMTSKLINGEL_QEMU_EXTRA:-} &
QEMU=$!
START=$(date +%s)
note "QEMU pid $QEMU, serial log $LOG, timeout $TIMEOUT s"

shown=0 done_at=
while kill -0 $QEMU 2>/dev/null; do
    now=$(date +%s)
    lines=$(grep -a 'AMTSKLINGEL-SELFTEST' "$LOG" | sed 's/^.*AMTSKLINGEL-SELFTEST/AMTSKLINGEL-SELFTEST/' || true)
    count=$(printf '%s' "$lines" | grep -c . || true)
    if [ "$count" -gt "$shown" ]; then
        printf '%s\n' "$lines" | tail -n $((count - shown)) | sed "s/^/    [+$((now - START))s] /"
        shown=$count
    fi
    if [ -z "$done_at" ] && grep -aq 'AMTSKLINGEL-SELFTEST DONE' "$LOG"; then done_at=$now; fi
    # After DONE the guest powers off; give it a minute.
    if [ -n "$done_at" ] && [ $((now - done_at)) -gt 60 ]; then note "no power-off 60 s after DONE"; break; fi
    if [ $((now - START)) -ge "$TIMEOUT" ]; then note "timeout after $TIMEOUT s"; break; fi
    sleep 5
done
kill $QEMU 2>/dev/null && wait $QEMU 2>/dev/null || true
QEMU=
END=$(date +%s)
# Seen from outside after power-off: provisioning moved the enrolment files off the boot partition.
left=$(mdir -b -i "$FAT" ::/ 2>/dev/null | grep -E '/(kiosk-token|appliance\.toml)$' || true)
if [ -z "$left" ]; then
    echo "AMTSKLINGEL-SELFTEST PASS enrolment-moved: kiosk-token and appliance.toml gone from the boot partition" >> "$LOG.host"
else
    echo "AMTSKLINGEL-SELFTEST FAIL enrolment-moved: still on the boot partition: $left" >> "$LOG.host"
fi

grep -a 'AMTSKLINGEL-SELFTEST' "$LOG" | sed 's/^.*AMTSKLINGEL-SELFTEST/AMTSKLINGEL-SELFTEST/' > "$T/results"
sed 's/^/    [host] /' "$LOG.host"
cat "$LOG.host" >> "$T/results"
pass=$(grep -c ' PASS ' "$T/results" || true)
fail=$(grep -c ' FAIL ' "$T/results" || true)
say "Boot test: $pass passed, $fail failed, $((END - START)) s in QEMU (log: $LOG)"
if ! grep -q 'AMTSKLINGEL-SELFTEST DONE' "$T/results"; then
    note "the self-test never finished; last console lines:"
    tail -n 40 "$LOG" | sed 's/^/    | /'
    exit 1
fi
grep ' FAIL ' "$T/results" | sed 's/^/    /' || true
[ "$fail" -eq 0 ] || exit 1
echo "image-test: $pass passed, $fail failed"
