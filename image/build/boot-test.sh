#!/bin/bash
# Boots the built image under qemu-system-aarch64 (-M virt, software emulation, the image's own arm64
# kernel and initrd from its boot partition) and checks it from outside, through the serial console.
#   ./build.sh image-test [IMAGE]      (default: the newest out/amtsklingel-*-arm64.img)
#
# It works on a sparse copy of the image (out/boot-test.img; the image itself stays untouched), 1 GiB
# bigger than the image as a real card would be, and enrols it the way facilities staff do: a
# kiosk-token and appliance.toml (fake hardware, since QEMU has no Pi camera, GPIO or sound card)
# go onto the boot partition, provisioning moves them.
# The town hall's network is a network namespace made for this run: QEMU's network card is a tap
# device in it, dnsmasq hands out the address and answers DNS, and this repository's central
# server (.venv, demo data) runs there as central.amtsklingel.test. Nothing leaves the namespace.
# Logging in is impossible by design (no passwords), so the kernel command line carries
# amtsklingel.selftest=1: the image's self-test (inert without the flag) checks the running
# system, connects a visit to central, prints "AMTSKLINGEL-SELFTEST PASS|FAIL ..." lines to the
# serial console and powers off. Afterwards the host checks the disk: enrolment files gone from
# the boot partition, the partition table valid and spanning the whole disk.
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
need_root   # network namespace, tap device
need_host_tools qemu-system-aarch64:qemu-system-arm mcopy:mtools sfdisk:fdisk dnsmasq:dnsmasq-base ip:iproute2
PYTHON=$REPO/.venv/bin/python
[ -x "$PYTHON" ] || die "no $PYTHON: ./build.sh image-test installs it (or run ./build.sh test once)"

say "Boot test of $(basename "$IMG")"
if [ -r "$IMG.sha256" ]; then
    (cd "$(dirname "$IMG")" && sha256sum --quiet -c "$(basename "$IMG").sha256") || die "checksum mismatch: $IMG"
    note "checksum ok"
fi

DISK=${AMTSKLINGEL_BOOT_DISK:-$REPO/out/boot-test.img}
cp --sparse=always "$IMG" "$DISK"
# A card bigger than the image: the data partition and the backup GPT must find its end.
truncate -s +1G "$DISK"
T=$(mktemp -d /tmp/amtsklingel-boot-test.XXXXXX)
NS=amtsklingel-boot-$$
cleanup() {
    [ -z "${QEMU:-}" ] || kill "$QEMU" 2>/dev/null || true
    # Everything started in the namespace (central, dnsmasq, QEMU), then the namespace.
    ip netns pids "$NS" 2>/dev/null | xargs -r kill 2>/dev/null || true
    ip netns del "$NS" 2>/dev/null || true
    rm -rf "$T"
    [ "${AMTSKLINGEL_KEEP:-0}" = 1 ] || rm -f "$DISK"
}
trap cleanup EXIT

# ---- the town hall's network: namespace, tap device, DHCP + DNS, central -------------------------
LAN_IP=10.77.0.1
CENTRAL_NAME=central.amtsklingel.test
CENTRAL_PORT=8080
ip netns add "$NS"
in_ns() { ip netns exec "$NS" "$@"; }
in_ns ip link set lo up
in_ns ip tuntap add dev tap0 mode tap
in_ns ip addr add "$LAN_IP/24" dev tap0
in_ns ip link set tap0 up
cat > "$T/central.toml" <<TOML
database_url = "sqlite:///$T/central.db"
host = "$LAN_IP"
port = $CENTRAL_PORT
public_url = "http://$CENTRAL_NAME:$CENTRAL_PORT"
secure_cookies = false
TOML
(cd "$REPO" && "$PYTHON" -m central --config "$T/central.toml" demo-data) > "$T/demo.json" ||
    die "central could not create its demo data"
(cd "$REPO" && in_ns "$PYTHON" -m central --config "$T/central.toml" serve) > "$T/central.log" 2>&1 &
in_ns dnsmasq --keep-in-foreground --conf-file=/dev/null --user=root --group=root \
    --interface=tap0 --bind-interfaces --no-resolv --no-hosts --log-facility=- --log-dhcp --log-queries \
    --dhcp-range=10.77.0.50,10.77.0.99,255.255.255.0,1h --dhcp-leasefile="$T/leases" \
    --dhcp-option=option:router,$LAN_IP --dhcp-option=option:dns-server,$LAN_IP \
    --host-record=$CENTRAL_NAME,$LAN_IP > "$T/dnsmasq.log" 2>&1 &
for _ in $(seq 50); do
    in_ns "$PYTHON" -c "import socket; socket.create_connection(('$LAN_IP', $CENTRAL_PORT), 1).close()" 2>/dev/null && break
    sleep 0.2
done
note "network namespace $NS: dnsmasq on tap0 ($LAN_IP), central on http://$CENTRAL_NAME:$CENTRAL_PORT"
"$PYTHON" -c 'import json, sys; print(json.load(open(sys.argv[1]))["kiosk_token"])' "$T/demo.json" > "$T/kiosk-token"
# Partition 1 is the boot partition; mtools works on it in place (DISK@@OFFSET), nothing is mounted.
boot_start=$(sfdisk --dump "$DISK" | sed -n 's/^[^:]*1 : start= *\([0-9]*\),.*/\1/p')
[ -n "$boot_start" ] || die "no partition 1 in $IMG"
FAT="$DISK@@$((boot_start * 512))"
mcopy -i "$FAT" "$HERE/selftest/enrol/appliance.toml" "$T/kiosk-token" ::/
note "enrolled: appliance.toml (fake hardware, central $CENTRAL_NAME) and a fresh kiosk-token on the boot partition"
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
in_ns qemu-system-aarch64 -M virt -cpu cortex-a72 -m 2048 -smp 2 -display none -monitor none -no-reboot \
    -netdev tap,id=lan,ifname=tap0,script=no,downscript=no -device virtio-net-pci,netdev=lan,mac=52:54:00:a7:6b:01 \
    -device i6300esb "${GPU[@]}" \
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

# The partition table spans the grown disk and is valid (backup GPT at the end), and partition 4
# is the data partition systemd-repart made.
verify=$(sfdisk --verify "$DISK" 2>&1 || true)
problems=
grep -q '^No errors detected' <<< "$verify" && ! grep -q 'not on the end' <<< "$verify" || problems=$(tr '\n' ' ' <<< "$verify")
table=$(sfdisk --dump "$DISK")
last_lba=$(sed -n 's/^last-lba: *//p' <<< "$table")
sectors=$(( $(stat -c %s "$DISK") / 512 ))
data_line=$(grep 'name="data"' <<< "$table" || true)
if [ -z "$problems" ] && [ $((sectors - last_lba)) -le 34 ] && [ -n "$data_line" ]; then
    echo "AMTSKLINGEL-SELFTEST PASS partition-table: valid, ends at the disk's end; ${data_line#* : }" >> "$LOG.host"
else
    echo "AMTSKLINGEL-SELFTEST FAIL partition-table: last-lba $last_lba of $sectors sectors; data: ${data_line:-none}; $problems" >> "$LOG.host"
fi
# The unit took its address from the town hall's DHCP server.
if grep -q 'DHCPACK' "$T/dnsmasq.log"; then
    echo "AMTSKLINGEL-SELFTEST PASS dhcp-lease: $(grep DHCPACK "$T/dnsmasq.log" | tail -1 | sed 's/^.*DHCPACK/DHCPACK/')" >> "$LOG.host"
else
    echo "AMTSKLINGEL-SELFTEST FAIL dhcp-lease: dnsmasq handed out no address" >> "$LOG.host"
fi
cp "$T/central.log" "$LOG.central"; cp "$T/dnsmasq.log" "$LOG.dnsmasq"

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
