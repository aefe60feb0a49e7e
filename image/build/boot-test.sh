#!/bin/bash
# Boots the built image under qemu-system-aarch64 (-M virt, software emulation) the way a Pi boots it:
# U-Boot (Debian's u-boot-qemu as QEMU's firmware, -bios) runs the image's boot script from the boot
# partition, which picks slot A with RAUC's boot counting and starts that slot's own kernel and
# initrd. The test checks it from outside, through the serial console.
#   ./build.sh image-test [IMAGE]      (default: the newest amtsklingel-*-arm64.img in $AMTSKLINGEL_OUT,
#                                       else out/)
# The image must be built with central's address of this test built in:
#   ./build.sh image --central http://central.amtsklingel.test:8080
#
# It works on a sparse copy of the image (boot-test.img next to it; the image itself stays
# untouched), 1 GiB bigger than the image as a real card would be, and enrols it the way facilities
# staff do: nothing on the boot partition but an appliance.toml selecting fake hardware (QEMU has no
# Pi camera, GPIO or sound card), no token. The unit shows a code; the guest's self-test prints it
# (AMTSKLINGEL-ENROL-CODE), and image/build/claim-code.py claims it here in central's admin pages as
# the demo admin, with a location and departments, as a person would.
# The town hall's network is a network namespace made for this run: QEMU's network card is a tap
# device in it, dnsmasq hands out the address and answers DNS, and this repository's central
# server (.venv, demo data) runs there as central.amtsklingel.test. Nothing leaves the namespace.
# Logging in is impossible by design (no passwords), so the kernel command line carries
# amtsklingel.selftest=1 (written into bootargs.txt on the copy's boot partition, which the boot
# script appends to the slot's root=PARTUUID=... rauc.slot=A): the image's self-test (inert without the flag) checks the running
# system, waits to be enrolled, connects a visit to central, prints "AMTSKLINGEL-SELFTEST PASS|FAIL ..." lines to the
# serial console and powers off. Afterwards the host checks the disk: the settings file gone from
# the boot partition, the partition table valid and spanning the whole disk; and that the kiosk
# got the location and departments the admin gave it.
# The test stops at the first FAIL (the self-test then prints what systemd and the journal say),
# and at once when the console shows emergency mode, a kernel panic or the initramfs giving up.
# Then a second boot of the same disk fails on purpose (amtsklingel.selftest=emergency: local file
# systems fail, as with a missing partition): it must show why, reboot, and be counted, by the
# image's boot-count and by U-Boot's tries left for slot A.
# The real hardware backends run too: the command line loads vivid (a V4L2 camera) and snd-aloop (an
# ALSA loopback card), and the unit's appliance.toml (selftest/devices/) points the appliance's camera,
# microphone and speaker at them. After the enrolment the guest's self-test makes a whole visit
# (selftest/call_checks.py), and a clerk in Chromium on this side of the town hall's network
# (clerk-call.py, Playwright) picks it up: moving video from the guest's V4L2 device, audio both ways
# through the guest's ALSA, the echo removed in the guest, vivid taken away mid-call.
# Environment: AMTSKLINGEL_BOOT_TIMEOUT (s, default 1800), AMTSKLINGEL_QEMU_GPU=0 (no virtio-gpu),
#              AMTSKLINGEL_QEMU_TCG=multi (one host thread per virtual CPU; see boot() below),
#              AMTSKLINGEL_QEMU_EXTRA (more QEMU arguments), AMTSKLINGEL_KEEP=1 (keep the copy),
#              AMTSKLINGEL_CARD_SIZE (the card, e.g. 64G; default the image + 1 GiB),
#              AMTSKLINGEL_BOOT_EMERGENCY=0 (skip the second boot; =always: also after failed checks),
#              AMTSKLINGEL_BOOT_DEVICES=0 (fake hardware, no call: the boot test as before).
set -euo pipefail
HERE=$(cd "$(dirname "$(readlink -f "$0")")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
# shellcheck source=lib.sh
. "$HERE/lib.sh"
# shellcheck source=town-hall.sh
. "$HERE/town-hall.sh"

OUT=${AMTSKLINGEL_OUT:-$REPO/out}
IMG=${1:-$(ls -t "$OUT"/amtsklingel-*-arm64.img 2>/dev/null | head -1 || true)}
[ -n "$IMG" ] && [ -r "$IMG" ] ||
    die "no image in $OUT: run ./build.sh image --central http://central.amtsklingel.test:8080 first (or pass the .img)"
TIMEOUT=${AMTSKLINGEL_BOOT_TIMEOUT:-1800}
DEVICES=${AMTSKLINGEL_BOOT_DEVICES:-1}
need_root   # network namespace, tap device
# The network card's option ROM (efi-virtio.rom) is in ipxe-qemu, which qemu-system-arm only
# recommends: without it QEMU refuses to start.
UBOOT=/usr/lib/u-boot/qemu_arm64/u-boot.bin
need_host_tools qemu-system-aarch64:qemu-system-arm /usr/lib/ipxe/qemu/efi-virtio.rom:ipxe-qemu mcopy:mtools \
    sfdisk:fdisk dnsmasq:dnsmasq-base ip:iproute2 truncate:coreutils $UBOOT:u-boot-qemu fw_printenv:libubootenv-tool \
    debugfs:e2fsprogs
PYTHON=$REPO/.venv/bin/python
[ -x "$PYTHON" ] || die "no $PYTHON: ./build.sh image-test installs it (or run ./build.sh test once)"

say "Boot test of $(basename "$IMG")"
if [ -r "$IMG.sha256" ]; then
    (cd "$(dirname "$IMG")" && sha256sum --quiet -c "$(basename "$IMG").sha256") || die "checksum mismatch: $IMG"
    note "checksum ok"
fi

DISK=${AMTSKLINGEL_BOOT_DISK:-$OUT/boot-test.img}
cp --sparse=always "$IMG" "$DISK"
# A card bigger than the image: the data partition and the backup GPT must find its end.
if [ -n "${AMTSKLINGEL_CARD_SIZE:-}" ]; then
    truncate -s "$AMTSKLINGEL_CARD_SIZE" "$DISK"
    [ "$(stat -c %s "$DISK")" -gt "$(stat -c %s "$IMG")" ] || die "AMTSKLINGEL_CARD_SIZE=$AMTSKLINGEL_CARD_SIZE is not bigger than the image"
else
    truncate -s +1G "$DISK"
fi
note "card: $(( $(stat -c %s "$DISK") >> 20 )) MiB (sparse copy of the image)"
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
# What the admin (claim-code.py) gives the unit when claiming its code; the guest must show them.
ENROL_LOCATION="Boot test, QEMU"
ENROL_DEPARTMENTS=standesamt,buergerbuero
# central with no settings beyond the town hall's; for the call, a connection bound that allows for
# the guest's emulated CPU (its DTLS handshake and first pictures take tens of seconds)
if [ "$DEVICES" = 1 ]; then start_town_hall "call_connect_timeout_s = 180"; else start_town_hall ""; fi
# Partition 1 is the boot partition; mtools works on it in place (DISK@@OFFSET), nothing is mounted.
boot_start=$(sfdisk --dump "$DISK" | sed -n 's/^[^:]*1 : start= *\([0-9]*\),.*/\1/p')
[ -n "$boot_start" ] || die "no partition 1 in $IMG"
FAT="$DISK@@$((boot_start * 512))"
# The image's appliance code has a V4L2 camera backend, or the call runs on a fake camera.
root_start=$(sfdisk --dump "$DISK" | sed -n 's/^[^:]*2 : start= *\([0-9]*\),.*/\1/p')
v4l2=$(debugfs -R "ls -p /usr/lib/amtsklingel/python/appliance/hardware/pi" "$DISK?offset=$((root_start * 512))" 2>/dev/null |
    tr '/' '\n' | grep -x v4l2 || true)
if [ "$DEVICES" = 1 ]; then
    if [ -n "$v4l2" ]; then
        cp "$HERE/selftest/devices/appliance.toml" "$T/appliance.toml"
    else
        # The camera-backed checks fail then (the clerk's video does not come from vivid), the rest runs.
        sed '/^\[hardware.camera\]/,/^$/c [hardware.camera]\nbackend = "fake"\n' "$HERE/selftest/devices/appliance.toml" > "$T/appliance.toml"
        note "this image's appliance has no V4L2 camera backend (appliance/hardware/pi/v4l2): a fake camera in the call"
    fi
    mcopy -i "$FAT" "$T/appliance.toml" ::/
    note "on the boot partition: appliance.toml (vivid camera, snd-aloop sound); no token: the unit enrols by code"
else
    mcopy -i "$FAT" "$HERE/selftest/enrol/appliance.toml" ::/
    note "on the boot partition: appliance.toml (fake hardware); no token: the unit enrols by code"
fi
# The image's own command line (bootargs.txt: after root=PARTUUID=... rauc.slot=..., which the boot
# script adds), with the console on QEMU's serial port and the self-test's flag.
mcopy -n -i "$FAT" ::bootargs.txt "$T/bootargs.txt" || die "the boot partition has no bootargs.txt (an image from before U-Boot?)"
BOOTARGS=$(sed -n 's/^amtsklingel_bootargs=//p' "$T/bootargs.txt" | tr -d '\r' |
    sed -e 's/console=[^ ]*//g' -e 's/\<quiet\>//' -e 's/loglevel=[0-9]//' | tr -s ' ' | sed 's/^ //;s/ $//')
[ -n "$BOOTARGS" ] || die "bootargs.txt on the boot partition has no amtsklingel_bootargs= line"
CMDLINE="console=ttyAMA0 $BOOTARGS loglevel=4 amtsklingel.selftest=1"
# vivid as one webcam-like capture device (no output, radio, SDR or other inputs), and the loopback
# card (id Loopback); systemd-modules-load loads both early, before the appliance starts.
[ "$DEVICES" != 1 ] || CMDLINE="$CMDLINE modules-load=vivid,snd_aloop vivid.n_devs=1 vivid.node_types=0x1 vivid.num_inputs=1 vivid.input_types=0x0"
note "U-Boot $UBOOT runs boot.scr; bootargs.txt: $CMDLINE"
# The slot variables on the boot partition, as Linux reads them (fw_printenv).
printf '%s 0x0 0x4000\n' "$T/boot-slots.env" > "$T/fw_env.config"
slot_tries() {
    mcopy -o -n -i "$FAT" ::boot-slots.env "$T/boot-slots.env" 2>/dev/null || return 0
    fw_printenv -c "$T/fw_env.config" -n "$1" 2>/dev/null || true
}

LOG=${AMTSKLINGEL_BOOT_LOG:-$OUT/boot-test.log}
: > "$LOG"
: > "$LOG.host"
GPU=()
# A display device, so that the kiosk (cage + Chromium) has a screen to start on.
[ "${AMTSKLINGEL_QEMU_GPU:-1}" = 0 ] || GPU=(-device virtio-gpu-pci)
# boot CMDLINE SERIAL-LOG: puts CMDLINE into bootargs.txt and starts the guest through U-Boot in the
# background (QEMU's pid in $QEMU). -no-reboot:
# a reboot of the guest ends QEMU, which is how the emergency boot below is seen to reboot.
# thread=single: both virtual CPUs take turns on one host thread. With one host thread per
# virtual CPU (QEMU's default) on a busy host, one virtual CPU can spin for minutes waiting for
# the other (the guest kernel reports soft lockups, in modprobe at boot) and the boot never
# ends; taking turns, that cannot happen, and on two busy cores the boot is faster too.
# AMTSKLINGEL_QEMU_TCG=multi gives each virtual CPU its own host thread: on a host with a core to
# spare the guest then does twice the work, as a Pi's four cores would (its call needs more than one
# emulated core); on a busy host it risks the soft lockups above.
TCG_THREAD=${AMTSKLINGEL_QEMU_TCG:-single}
case $TCG_THREAD in single|multi) ;; *) echo "AMTSKLINGEL_QEMU_TCG must be single or multi, not '$TCG_THREAD'" >&2; exit 2;; esac
# Started through ip directly (not in_ns, a function): $! is then QEMU itself, not a subshell.
boot() {
    echo "amtsklingel_bootargs=$1" > "$T/bootargs.txt"
    mcopy -o -i "$FAT" "$T/bootargs.txt" ::bootargs.txt
    # shellcheck disable=SC2086
    ip netns exec "$NS" qemu-system-aarch64 -M virt -accel "tcg,thread=$TCG_THREAD" -cpu cortex-a72 -m 2048 -smp 2 \
        -display none -monitor none -no-reboot \
        -netdev tap,id=lan,ifname=tap0,script=no,downscript=no -device virtio-net-pci,netdev=lan,mac=52:54:00:a7:6b:01 \
        -device i6300esb "${GPU[@]}" \
        -bios "$UBOOT" \
        -drive "file=$DISK,format=raw,if=virtio" \
        -chardev "file,id=serial0,path=$2" -serial chardev:serial0 ${AMTSKLINGEL_QEMU_EXTRA:-} &
    QEMU=$!
}
stop_qemu() {
    [ -z "${QEMU:-}" ] || { kill "$QEMU" 2>/dev/null && wait "$QEMU" 2>/dev/null || true; }
    QEMU=
}
# The lines that usually say why a boot failed.
WHY='FAILED|Failed|Dependency failed|Timed out|timed out|emergency|Emergency|panic|ALERT|Gave up|soft lockup|stall'
show_why() {
    note "what the console says went wrong ($1):"
    grep -aE "$WHY" "$1" | grep -av 'AMTSKLINGEL-SELFTEST PASS' | tail -n 25 | sed 's/^/    | /'
    note "last console lines:"
    tail -n 15 "$1" | sed 's/^/    | /'
}

# ---- the Pi's own U-Boot: the same boot chain up to the kernel -----------------------------------------
# The image's u-boot.bin (Debian's u-boot-rpi, rpi_arm64: the binary the Pi 4 and Pi 5 run) under QEMU's
# raspi3b machine, which that binary supports too, from a copy of the image as its SD card: it must load
# the image's uboot.env (no autoboot countdown), bootstd must find boot.scr, the script must choose
# slot A, count the try and start the slot's kernel. The kernel
# itself is not followed further (the board emulation is slow); the virt machine below boots it.
pi_uboot() {
    local sd=$T/pi-sd.img plog=$LOG.pi-u-boot root_start
    cp --sparse=always "$IMG" "$sd"
    truncate -s 8G "$sd"   # an SD card: a power of two
    mcopy -n -i "$sd@@$((boot_start * 512))" ::u-boot.bin "$T/u-boot-rpi.bin"
    root_start=$(sfdisk --dump "$sd" 2>/dev/null | sed -n 's/^[^:]*2 : start= *\([0-9]*\),.*/\1/p')
    debugfs -R "dump $(debugfs -R 'ls -p /usr/lib' "$sd?offset=$((root_start * 512))" 2>/dev/null |
        tr '/' '\n' | grep -m1 '^linux-image-' | sed 's|^|/usr/lib/|')/broadcom/bcm2837-rpi-3-b.dtb $T/rpi3.dtb" \
        "$sd?offset=$((root_start * 512))" 2>/dev/null
    : > "$plog"
    if [ ! -s "$T/rpi3.dtb" ]; then
        echo "AMTSKLINGEL-SELFTEST FAIL pi-u-boot-starts-slot-a: no bcm2837-rpi-3-b.dtb in the image's kernel package" >> "$LOG.host"
        return
    fi
    qemu-system-aarch64 -M raspi3b -kernel "$T/u-boot-rpi.bin" -dtb "$T/rpi3.dtb" \
        -drive "file=$sd,format=raw,if=sd" -serial "file:$plog.early" -serial "file:$plog" -display none -monitor none -no-reboot &
    local pid=$! waited=0
    while kill -0 "$pid" 2>/dev/null && ! grep -aq 'Starting kernel' "$plog" && [ $waited -lt 180 ]; do
        sleep 2; waited=$((waited + 2))
    done
    kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true
    rm -f "$sd"
    local version
    # U-Boot's banner comes on the first UART, before it switches to the one its device tree names.
    version=$(cat "$plog.early" "$plog" | grep -a -m1 '^U-Boot 20' | sed 's/ (.*//' | tr -d '\r' || true)
    rm -f "$plog.early"
    # It took the image's uboot.env (bootdelay=-2): no countdown a USB keyboard could interrupt.
    if grep -aq 'Amtsklingel: booting slot A' "$plog" && grep -aq 'Starting kernel' "$plog" &&
        grep -aq "rauc.slot=A" "$plog" && grep -aq 'Loading Environment from FAT... OK' "$plog" &&
        ! grep -aq 'Hit any key to stop autoboot' "$plog"; then
        echo "AMTSKLINGEL-SELFTEST PASS pi-u-boot-starts-slot-a: ${version:-U-Boot} on raspi3b took uboot.env (no autoboot countdown), ran boot.scr from $(grep -a -m1 'Amtsklingel boot script on' "$plog" | sed 's/.* on //' | tr -d '\r') and started slot A's kernel after ${waited} s" >> "$LOG.host"
    else
        echo "AMTSKLINGEL-SELFTEST FAIL pi-u-boot-starts-slot-a: ${version:-no U-Boot banner}; last lines: $(tail -n 3 "$plog" | tr -d '\r' | tr '\n' ' ')" >> "$LOG.host"
    fi
}
pi_uboot
note "the Pi's U-Boot: $(tail -1 "$LOG.host" | sed 's/^AMTSKLINGEL-SELFTEST //')"

boot "$CMDLINE" "$LOG"
START=$(date +%s)
note "QEMU pid $QEMU, serial log $LOG, timeout $TIMEOUT s"
# The admin: waits for the code on the console and claims it in central's admin pages. Started
# through ip directly (not in_ns, a function): $! is then the script itself.
ip netns exec "$NS" "$PYTHON" "$HERE/claim-code.py" --console "$LOG" --central "http://$LAN_IP:$CENTRAL_PORT" \
    --credentials "$T/demo.json" --location "$ENROL_LOCATION" --departments "$ENROL_DEPARTMENTS" \
    --timeout "$TIMEOUT" >> "$LOG.host" 2> "$T/claim.log" &
CLAIM=$!
# The clerk: picks up the visit the self-test makes on the real devices and judges what arrives.
CLERK=
if [ "$DEVICES" = 1 ]; then
    ip netns exec "$NS" "$PYTHON" "$HERE/clerk-call.py" --console "$LOG" --central "http://$LAN_IP:$CENTRAL_PORT" \
        --credentials "$T/demo.json" --timeout "$TIMEOUT" --work "$T" >> "$LOG.host" 2> "$T/clerk.log" &
    CLERK=$!
fi
# Returns at DONE, soon after the first FAIL, or at once at emergency mode or a panic.
outcome=0
# The call's checks go on after a FAIL among them (the camera is still pulled, the call hung up).
WATCH_AFTER_FAIL=$([ "$DEVICES" = 1 ] && echo 480 || echo 120) "$HERE/watch-console.sh" "$LOG" "$QEMU" "$TIMEOUT" || outcome=$?
stop_qemu
END=$(date +%s)
if kill -0 "$CLAIM" 2>/dev/null; then
    kill "$CLAIM" 2>/dev/null || true
    echo "AMTSKLINGEL-SELFTEST INFO enrol-claimed: not claimed; the self-test ended before it showed a code" >> "$LOG.host"
fi
wait "$CLAIM" 2>/dev/null || true
cp "$T/claim.log" "$LOG.claim"
if [ -n "$CLERK" ]; then
    # It ends once the guest's call ended (or the self-test did), after judging what it got; told to
    # stop (SIGTERM), it judges what it has.
    for _ in $(seq 90); do kill -0 "$CLERK" 2>/dev/null || break; sleep 1; done
    kill "$CLERK" 2>/dev/null || true
    for _ in $(seq 30); do kill -0 "$CLERK" 2>/dev/null || break; sleep 1; done
    kill -9 "$CLERK" 2>/dev/null || true
    wait "$CLERK" 2>/dev/null || true
    grep -q ' v4l2-camera-call: ' "$LOG.host" ||
        echo "AMTSKLINGEL-SELFTEST FAIL v4l2-camera-call: the clerk gave no verdict (log: $LOG.clerk)" >> "$LOG.host"
    cp "$T/clerk.log" "$LOG.clerk"
fi
case $outcome in
    11) say "Boot test: FAIL after $((END - START)) s: the guest went to emergency mode or panicked (log: $LOG)"
        show_why "$LOG"; exit 1 ;;
    12|13) say "Boot test: FAIL after $((END - START)) s: the self-test did not finish (log: $LOG)"
        show_why "$LOG"; exit 1 ;;
esac
# Seen from outside after power-off: provisioning moved the settings file off the boot partition.
left=$(mdir -b -i "$FAT" ::/ 2>/dev/null | grep -E '/(kiosk-token|appliance\.toml)$' || true)
if [ -z "$left" ]; then
    echo "AMTSKLINGEL-SELFTEST PASS enrolment-moved: appliance.toml gone from the boot partition" >> "$LOG.host"
else
    echo "AMTSKLINGEL-SELFTEST FAIL enrolment-moved: still on the boot partition: $left" >> "$LOG.host"
fi

# The kiosk shows what the admin gave it when claiming the code: the location, only those departments.
enrolled=$(grep -a 'AMTSKLINGEL-SELFTEST PASS enrolled:' "$LOG" | tail -1 | tr -d '\r' || true)
shown=$(sed -n 's/.*; departments \([^;]*\);.*/\1/p' <<< "$enrolled" | tr ' ' '\n' | sort | paste -sd, -)
if [[ $enrolled == *"location '$ENROL_LOCATION';"* ]] && [ "$shown" = "$(tr ',' '\n' <<< "$ENROL_DEPARTMENTS" | sort | paste -sd, -)" ]; then
    echo "AMTSKLINGEL-SELFTEST PASS enrol-settings-arrived: location '$ENROL_LOCATION', departments $shown" >> "$LOG.host"
else
    echo "AMTSKLINGEL-SELFTEST FAIL enrol-settings-arrived: claimed as '$ENROL_LOCATION' with $ENROL_DEPARTMENTS; the kiosk: ${enrolled#*enrolled: }" >> "$LOG.host"
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

# ---- a boot that fails: emergency mode must show why and reboot, and the boot is counted -------------
EMERGENCY_S=
passed_so_far=$(grep -a 'AMTSKLINGEL-SELFTEST DONE' "$LOG" | grep -c ' 0 failed' || true)
finished=$(grep -ac 'AMTSKLINGEL-SELFTEST DONE' "$LOG" || true)
# By default only after a clean first boot; "always" also after failed checks of the first boot (a call's,
# say), as long as its self-test ran to the end: the second boot tests emergency mode and boot counting.
case "${AMTSKLINGEL_BOOT_EMERGENCY:-1}" in
    0) second_boot=0 ;;
    always) second_boot=$([ "$finished" -gt 0 ] && echo 1 || echo 0) ;;
    *) second_boot=$([ "$passed_so_far" -gt 0 ] && ! grep -q ' FAIL ' "$LOG.host" && echo 1 || echo 0) ;;
esac
if [ "$second_boot" = 1 ]; then
    say "Second boot: local file systems fail on purpose; emergency mode must reboot"
    before=$(mtype -i "$FAT" ::boot-count 2>/dev/null | tr -dc 0-9 || true)
    tries_before=$(slot_tries BOOT_A_LEFT)
    ELOG=$LOG.emergency
    : > "$ELOG"
    boot "${CMDLINE/amtsklingel.selftest=1/amtsklingel.selftest=emergency}" "$ELOG"
    E0=$(date +%s)
    while kill -0 "$QEMU" 2>/dev/null && [ $(( $(date +%s) - E0 )) -lt 600 ]; do sleep 2; done
    if kill -0 "$QEMU" 2>/dev/null; then rebooted=0; else rebooted=1; fi
    stop_qemu
    EMERGENCY_S=$(( $(date +%s) - E0 ))
    after=$(mtype -i "$FAT" ::boot-count 2>/dev/null | tr -dc 0-9 || true)
    tries_after=$(slot_tries BOOT_A_LEFT)
    if grep -aq 'AMTSKLINGEL-EMERGENCY' "$ELOG" && ! grep -aq 'root account is locked' "$ELOG"; then
        echo "AMTSKLINGEL-SELFTEST PASS emergency-explains: $(grep -a 'AMTSKLINGEL-EMERGENCY failed units' "$ELOG" | head -1 | tr -d '\r')" >> "$LOG.host"
    else
        echo "AMTSKLINGEL-SELFTEST FAIL emergency-explains: no notice of the image's emergency-reboot on the console" >> "$LOG.host"
    fi
    if [ "$rebooted" = 1 ] && grep -aq 'reboot: Restarting system' "$ELOG"; then
        echo "AMTSKLINGEL-SELFTEST PASS emergency-reboots: the guest restarted by itself after $EMERGENCY_S s" >> "$LOG.host"
    else
        echo "AMTSKLINGEL-SELFTEST FAIL emergency-reboots: $([ "$rebooted" = 1 ] && echo 'QEMU ended without a restart' || echo 'still running after 600 s')" >> "$LOG.host"
        show_why "$ELOG"
    fi
    if [ -n "$after" ] && [ "$after" -eq $(( ${before:-0} + 1 )) ]; then
        echo "AMTSKLINGEL-SELFTEST PASS boot-counted: boot-count on the boot partition ${before:-0} -> $after" >> "$LOG.host"
    else
        echo "AMTSKLINGEL-SELFTEST FAIL boot-counted: boot-count on the boot partition ${before:-none} -> ${after:-none}" >> "$LOG.host"
    fi
    # U-Boot's boot script chose slot A again and used up one of its tries before the kernel started;
    # a boot that ends in emergency mode never reaches mark-good, so the try stays used up.
    if grep -aq 'Amtsklingel: booting slot A' "$ELOG" && [ -n "$tries_before" ] && [ -n "$tries_after" ] &&
        [ "$tries_after" -eq $((tries_before - 1)) ]; then
        echo "AMTSKLINGEL-SELFTEST PASS slot-try-counted: U-Boot booted slot A, BOOT_A_LEFT $tries_before -> $tries_after" >> "$LOG.host"
    else
        echo "AMTSKLINGEL-SELFTEST FAIL slot-try-counted: $(grep -a 'Amtsklingel: booting slot' "$ELOG" | head -1 | tr -d '\r' || echo 'no slot chosen on the console'); BOOT_A_LEFT ${tries_before:-none} -> ${tries_after:-none}" >> "$LOG.host"
    fi
fi
cp "$T/central.log" "$LOG.central"; cp "$T/dnsmasq.log" "$LOG.dnsmasq"

grep -a 'AMTSKLINGEL-SELFTEST' "$LOG" | sed 's/^.*AMTSKLINGEL-SELFTEST/AMTSKLINGEL-SELFTEST/' > "$T/results"
sed 's/^/    [host] /' "$LOG.host"
cat "$LOG.host" >> "$T/results"
pass=$(grep -c ' PASS ' "$T/results" || true)
fail=$(grep -c ' FAIL ' "$T/results" || true)
say "Boot test: $pass passed, $fail failed, first boot $((END - START)) s in QEMU${EMERGENCY_S:+, emergency boot $EMERGENCY_S s} (log: $LOG)"
if ! grep -q 'AMTSKLINGEL-SELFTEST DONE' "$T/results"; then
    note "the self-test never finished"
    show_why "$LOG"
    exit 1
fi
grep ' FAIL ' "$T/results" | sed 's/^/    /' || true
if grep -aq 'AMTSKLINGEL-SELFTEST DIAG begin' "$LOG"; then
    note "the self-test's diagnosis:"
    sed -n '/AMTSKLINGEL-SELFTEST DIAG begin/,/AMTSKLINGEL-SELFTEST DIAG end/p' "$LOG" | sed 's/^/    | /'
fi
[ "$fail" -eq 0 ] || exit 1
echo "image-test: $pass passed, $fail failed"
