#!/bin/bash
# The update path end to end under QEMU, as on a Pi: U-Boot, RAUC, the appliance's update agent and
# central's bundles and rollout, on a private test network (the same set-up as boot-test.sh).
#   ./build.sh update-test        (as root; 40-60 min on two cores, most of it QEMU)
# It builds what it needs in $AMTSKLINGEL_OUT (default out/), reusing the base of an earlier
# ./build.sh image (--reuse-base), into update-test/ there:
#   keys/      throwaway update keys: the city's CA and signing key, and a stranger's (tests/rauc_bundles.py)
#   image N    ./build.sh image --central http://central.amtsklingel.test:8080 --update-keyring keys/city-ca.pem
#   N+1        N's root file system with one Debian package more (a .deb from out/cache/apt, or one
#              package less when the cache has none the image lacks): ./build.sh bundle
#   N+2        N+1 with a kiosk page that answers 503: its trial boot fails the kiosk_page check
#   N+3        N+1 again under a new version: the installation QEMU is killed in
#   corrupt    a small bundle signed by the city with one byte changed, and one signed by the stranger:
#              both put into central's bundle store without central's upload check, so that the
#              unit's own refusal is what is tested
# Then, each a named check ("UPDATE-TEST PASS|FAIL name: ..."), with central's view read from its
# /metrics and fleet page: boot N and enrol by code; N+1 offered, installed, rebooted into, committed;
# N+2 fails its health check and the unit falls back to N+1 by itself; the corrupt and the stranger's
# bundle refused without a reboot; QEMU killed while N+3 installs, the unit boots N+1 and installs
# N+3 again. Figures as JSON lines (update_bundle_mb, update_download_mb, update_install_s,
# update_rollback_s), also in update-test/results.json for ./build.sh bench --only update.
# Environment: AMTSKLINGEL_UPDATE_STEP_TIMEOUT (s per step, default 1500), AMTSKLINGEL_KEEP=1 (keep
#              the disk), AMTSKLINGEL_UPDATE_NO_BUILD=1 (use update-test/'s image and bundles as they are).
set -euo pipefail
HERE=$(cd "$(dirname "$(readlink -f "$0")")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
# shellcheck source=lib.sh
. "$HERE/lib.sh"
# shellcheck source=town-hall.sh
. "$HERE/town-hall.sh"

OUT=${AMTSKLINGEL_OUT:-$REPO/out}
W=$OUT/update-test
STEP_TIMEOUT=${AMTSKLINGEL_UPDATE_STEP_TIMEOUT:-1500}
need_root   # image build, network namespace, tap device
UBOOT=/usr/lib/u-boot/qemu_arm64/u-boot.bin
need_host_tools qemu-system-aarch64:qemu-system-arm /usr/lib/ipxe/qemu/efi-virtio.rom:ipxe-qemu mcopy:mtools \
    sfdisk:fdisk dnsmasq:dnsmasq-base ip:iproute2 $UBOOT:u-boot-qemu rauc:rauc mksquashfs:squashfs-tools
PYTHON=$REPO/.venv/bin/python
[ -x "$PYTHON" ] || die "no $PYTHON: ./build.sh update-test installs it (or run ./build.sh test once)"
mkdir -p "$W"
LOG=$W/console.log
RESULTS=$W/checks.txt
: > "$RESULTS"
check() {  # check PASS|FAIL name detail...
    local verdict=$1 name=$2; shift 2
    echo "UPDATE-TEST $verdict $name: $*" | tee -a "$RESULTS"
}

# ---- 1. keys and image N; the bundles are made while N boots -------------------------------------
BUILDING=
if [ "${AMTSKLINGEL_UPDATE_NO_BUILD:-0}" != 1 ]; then
    "$HERE/update-test-build.sh" image "$W"
    "$HERE/update-test-build.sh" bundles "$W" > "$W/bundles.log" 2>&1 &
    BUILDING=$!
fi
# shellcheck source=/dev/null
. "$W/versions-n.env"   # IMG, V_N
# bundles_ready: waits for the bundles (versions.env: V_N1, V_N2, V_N3 and the bundle files B_*).
bundles_ready() {
    if [ -n "$BUILDING" ]; then
        wait "$BUILDING" || die "making the bundles failed: $(tail -5 "$W/bundles.log")"
        BUILDING=
    fi
    local waited=0
    until [ -r "$W/versions.env" ]; do
        [ "$waited" -lt "$STEP_TIMEOUT" ] || die "no $W/versions.env: the bundles were not made"
        sleep 5; waited=$((waited + 5))
    done
    # shellcheck source=/dev/null
    . "$W/versions.env"
}
say "Update test: N=$V_N; the bundles N+1, N+2 (fails its health check) and N+3 follow"

# ---- 2. the town hall's network and central ------------------------------------------------------
DISK=$W/disk.img
cp --sparse=always "$IMG" "$DISK"
truncate -s +1G "$DISK"
T=$(mktemp -d /tmp/amtsklingel-update-test.XXXXXX)
NS=amtsklingel-update-$$
QEMU=
cleanup() {
    [ -z "$QEMU" ] || kill "$QEMU" 2>/dev/null || true
    [ -z "$BUILDING" ] || kill "$BUILDING" 2>/dev/null || true
    ip netns pids "$NS" 2>/dev/null | xargs -r kill 2>/dev/null || true
    ip netns del "$NS" 2>/dev/null || true
    cp "$T/central.log" "$W/central.log" 2>/dev/null || true
    rm -rf "$T"
    [ "${AMTSKLINGEL_KEEP:-0}" = 1 ] || rm -f "$DISK"
}
trap cleanup EXIT
METRICS_TOKEN=$(openssl rand -hex 24)
mkdir -p "$T/bundles"
start_town_hall "metrics_token = \"$METRICS_TOKEN\"
update_keyring = \"$W/keys/city-ca.pem\"
bundle_dir = \"$T/bundles\""
# The host's view of central: update-central.py (bundles, rollout, the kiosk's state).
central() {
    (cd "$REPO" && PYTHONPATH=$REPO ip netns exec "$NS" "$PYTHON" "$HERE/update-central.py" --config "$T/central.toml" \
        --central "http://$LAN_IP:$CENTRAL_PORT" --credentials "$T/demo.json" --metrics-token "$METRICS_TOKEN" "$@")
}

# ---- QEMU -------------------------------------------------------------------------------------------
boot_start=$(sfdisk --dump "$DISK" | sed -n 's/^[^:]*1 : start= *\([0-9]*\),.*/\1/p')
FAT="$DISK@@$((boot_start * 512))"
mcopy -n -i "$FAT" ::bootargs.txt "$T/bootargs.txt" || die "the boot partition has no bootargs.txt (an image from before U-Boot?)"
BOOTARGS=$(sed -n 's/^amtsklingel_bootargs=//p' "$T/bootargs.txt" | tr -d '\r' |
    sed -e 's/console=[^ ]*//g' -e 's/\<quiet\>//' -e 's/loglevel=[0-9]//' | tr -s ' ' | sed 's/^ //;s/ $//')
set_bootargs() {
    echo "amtsklingel_bootargs=$1" > "$T/bootargs.txt"
    mcopy -o -i "$FAT" "$T/bootargs.txt" ::bootargs.txt
}
: > "$LOG"
# start_qemu [-no-reboot]: the guest in the background (QEMU's pid in $QEMU), its console appended
# to $LOG. Without -no-reboot a reboot of the guest runs U-Boot again in the same QEMU, as a Pi does.
start_qemu() {
    # shellcheck disable=SC2086
    ip netns exec "$NS" qemu-system-aarch64 -M virt -accel tcg,thread=single -cpu cortex-a72 -m 2048 -smp 2 \
        -display none -monitor none "$@" \
        -netdev tap,id=lan,ifname=tap0,script=no,downscript=no -device virtio-net-pci,netdev=lan,mac=52:54:00:a7:6b:02 \
        -device i6300esb -device virtio-gpu-pci -bios "$UBOOT" \
        -drive "file=$DISK,format=raw,if=virtio" \
        -chardev "file,id=serial0,path=$LOG,append=on" -serial chardev:serial0 &
    QEMU=$!
}
stop_qemu() {
    [ -z "$QEMU" ] || { kill "${1:--TERM}" "$QEMU" 2>/dev/null && wait "$QEMU" 2>/dev/null || true; }
    QEMU=
}
boots() { grep -ac 'Amtsklingel: booting slot' "$LOG" || true; }
last_slot() { grep -a 'Amtsklingel: booting slot' "$LOG" | tail -1 | sed 's/.*booting slot \([AB]\).*/\1/'; }
json() { echo "{\"metric\": \"$1\", \"value\": $2, \"unit\": \"$3\"}" | tee -a "$W/results.json.tmp"; }
: > "$W/results.json.tmp"
finish() {
    stop_qemu -KILL
    mv "$W/results.json.tmp" "$W/results.json"
    pass=$(grep -c ' PASS ' "$RESULTS" || true); fail=$(grep -c ' FAIL ' "$RESULTS" || true)
    say "Update test: $pass passed, $fail failed (console: $LOG, central: $W/central.log)"
    grep ' FAIL ' "$RESULTS" | sed 's/^/    /' || true
    [ "$fail" -eq 0 ] && [ "$pass" -gt 0 ] || exit 1
    echo "update-test: $pass passed, $fail failed"
    exit 0
}

# ---- 3. version N boots and is enrolled by code -------------------------------------------------------
say "N boots with the self-test and is enrolled by code"
mcopy -i "$FAT" "$HERE/selftest/enrol/appliance.toml" ::/
set_bootargs "console=ttyAMA0 $BOOTARGS loglevel=4 amtsklingel.selftest=1"
start_qemu -no-reboot
T0=$(date +%s)
ip netns exec "$NS" "$PYTHON" "$HERE/claim-code.py" --console "$LOG" --central "http://$LAN_IP:$CENTRAL_PORT" \
    --credentials "$T/demo.json" --location "Update test, QEMU" --timeout "$STEP_TIMEOUT" > "$T/claim.out" 2> "$T/claim.log" &
CLAIM=$!
outcome=0
"$HERE/watch-console.sh" "$LOG" "$QEMU" "$STEP_TIMEOUT" > "$T/watch.log" || outcome=$?
stop_qemu
kill "$CLAIM" 2>/dev/null || true; wait "$CLAIM" 2>/dev/null || true
if [ "$outcome" = 0 ] && grep -q 'PASS enrol-claimed' "$T/claim.out"; then
    check PASS boots-n "version $V_N booted through U-Boot (slot $(last_slot)), self-test passed, enrolled by code in $(( $(date +%s) - T0 )) s"
else
    check FAIL boots-n "$(tail -1 "$T/watch.log"); $(tail -1 "$T/claim.out" 2>/dev/null)"
    grep -a 'AMTSKLINGEL-SELFTEST FAIL' "$LOG" | head -5 | sed 's/^/    | /'
    finish
fi

# From now on the unit runs as in the field: no self-test, reboots happen inside QEMU. The journal's
# warnings and errors also go to the serial console (console.log): why an installation failed is there to read.
set_bootargs "console=ttyAMA0 $BOOTARGS loglevel=4 systemd.journald.forward_to_console=1 systemd.journald.max_level_console=warning"
start_qemu
if central wait --version "$V_N" --connected --timeout "$STEP_TIMEOUT" > "$T/state"; then
    check PASS runs-n "central shows the kiosk on $V_N: $(cat "$T/state")"
else
    check FAIL runs-n "central does not show the kiosk on $V_N: $(cat "$T/state")"
    finish
fi

# ---- 4. N+1: offered, installed, rebooted into, committed ---------------------------------------------
bundles_ready
say "N+1 ($V_N1, $CHANGE) offered"
bundle_n1=$(central add "$B_N1") || { check FAIL offers-n1 "central refused $B_N1"; finish; }
tx0=$(in_ns cat /sys/class/net/tap0/statistics/tx_bytes)
boots0=$(boots)
T0=$(date +%s)
central rollout --bundle "$bundle_n1" > "$T/rollout" 2>&1 || { check FAIL offers-n1 "$(cat "$T/rollout")"; finish; }
check PASS offers-n1 "bundle $bundle_n1 ($V_N1, $(( $(stat -c %s "$B_N1") >> 20 )) MiB) rolled out: $(cat "$T/rollout")"
if central wait --state installed,rebooting,running --bundle "$bundle_n1" --timeout "$STEP_TIMEOUT" > "$T/state"; then
    T_INSTALLED=$(date +%s)
    tx1=$(in_ns cat /sys/class/net/tap0/statistics/tx_bytes)
    check PASS installs-n1 "installed in $((T_INSTALLED - T0)) s: $(cat "$T/state")"
else
    check FAIL installs-n1 "$(cat "$T/state")"; finish
fi
if central wait --version "$V_N1" --state running --bundle "$bundle_n1" --timeout "$STEP_TIMEOUT" > "$T/state"; then
    T_RUNNING=$(date +%s)
    if [ "$(boots)" -gt "$boots0" ] && [ "$(last_slot)" = B ]; then
        check PASS reboots-into-n1 "U-Boot booted slot B after the installation"
    else
        check FAIL reboots-into-n1 "boots before $boots0, now $(boots), last slot $(last_slot)"
    fi
    check PASS commits-n1 "central shows $V_N1 running, $((T_RUNNING - T0)) s after the offer: $(cat "$T/state")"
    json update_bundle_mb "$(awk -v b="$(stat -c %s "$B_N1")" 'BEGIN { printf "%.1f", b / 1048576 }')" MB
    # Everything central's side of the LAN sent to the unit while it fetched N+1 (the bundle's bytes,
    # and a little WebSocket traffic); the agent's own counter is in the check's line above.
    json update_download_mb "$(awk -v b="$((tx1 - tx0))" 'BEGIN { printf "%.1f", b / 1048576 }')" MB
    json update_install_s "$((T_RUNNING - T0))" s
else
    check FAIL commits-n1 "$(cat "$T/state")"; finish
fi

# ---- 5. N+2 fails its health check: back to N+1 by itself -------------------------------------------
say "N+2 ($V_N2, kiosk page broken) offered"
bundle_n2=$(central add "$B_N2") || { check FAIL offers-n2 "central refused $B_N2"; finish; }
central rollout --bundle "$bundle_n2" > "$T/rollout" 2>&1 || { check FAIL offers-n2 "$(cat "$T/rollout")"; finish; }
boots0=$(boots)
if central wait --state rebooting,rolled_back,failed --bundle "$bundle_n2" --timeout "$STEP_TIMEOUT" > "$T/state"; then
    if grep -q '"state": "failed"' "$T/state"; then
        # The unit tries a failed installation again by itself (2, 10, 30 min later): say why this
        # one failed (the agent's error in the journal, on the console) and wait for the next try.
        say "N+2's installation failed; the unit tries again by itself: $(cat "$T/state")"
        grep -a 'update to .* failed\|cannot start\|busy with an installation\|rauc' "$LOG" | tail -5 | sed 's/^/    | /' || true
        central wait --state rebooting,rolled_back --bundle "$bundle_n2" --timeout "$STEP_TIMEOUT" > "$T/state" ||
            { check FAIL installs-n2 "not installed on a later try either: $(cat "$T/state")"; finish; }
    fi
    T_TRIAL=$(date +%s)
else
    check FAIL installs-n2 "$(cat "$T/state")"; finish
fi
if central wait --state rolled_back --bundle "$bundle_n2" --version "$V_N1" --timeout "$STEP_TIMEOUT" > "$T/state"; then
    T_BACK=$(date +%s)
    if grep -q '"fault": "health_check_failed"' "$T/state" && grep -q '"check": "kiosk_page"' "$T/state"; then
        check PASS rolls-back-n2 "the trial of $V_N2 failed kiosk_page; central shows rolled back, $V_N1 running: $(cat "$T/state")"
    else
        check FAIL rolls-back-n2 "rolled back, but not for the kiosk page: $(cat "$T/state")"
    fi
    slots=$(grep -a 'Amtsklingel: booting slot' "$LOG" | tail -n +"$((boots0 + 1))" | sed 's/.*booting slot \([AB]\).*/\1/' | paste -sd' ' -)
    if [ "$slots" = "A B" ]; then
        check PASS falls-back-by-itself "U-Boot booted A (the trial) then B again: $slots"
    else
        check FAIL falls-back-by-itself "slots booted since the offer: ${slots:-none}"
    fi
    json update_rollback_s "$((T_BACK - T_TRIAL))" s
else
    check FAIL rolls-back-n2 "$(cat "$T/state")"; finish
fi

# ---- 6. a changed byte and a stranger's key: refused, no reboot ----------------------------------------
for kind in corrupt stranger; do
    if [ $kind = corrupt ]; then file=$B_CORRUPT want=bundle_corrupt; else file=$B_STRANGER want=signature_invalid; fi
    say "A bundle the unit must refuse: $kind ($(basename "$file"))"
    id=$(central add --unchecked "$file") || { check FAIL "refuses-$kind" "could not store it"; continue; }
    boots0=$(boots)
    central rollout --bundle "$id" > "$T/rollout" 2>&1 || { check FAIL "refuses-$kind" "$(cat "$T/rollout")"; continue; }
    if central wait --state failed --bundle "$id" --version "$V_N1" --timeout "$STEP_TIMEOUT" > "$T/state" &&
        grep -q "\"fault\": \"$want\"" "$T/state" && [ "$(boots)" = "$boots0" ]; then
        check PASS "refuses-$kind" "failed with $want, no reboot, still $V_N1: $(cat "$T/state")"
    else
        check FAIL "refuses-$kind" "want failed/$want without a reboot (boots $boots0 -> $(boots)): $(cat "$T/state")"
    fi
done

# ---- 7. QEMU killed in the middle of an installation ----------------------------------------------------
say "N+3 ($V_N3) offered; QEMU killed while it installs"
bundle_n3=$(central add "$B_N3") || { check FAIL offers-n3 "central refused $B_N3"; finish; }
central rollout --bundle "$bundle_n3" > "$T/rollout" 2>&1 || { check FAIL offers-n3 "$(cat "$T/rollout")"; finish; }
if central wait --state downloading,installed,rebooting,running --min-progress 20 --bundle "$bundle_n3" \
        --timeout "$STEP_TIMEOUT" > "$T/state" && grep -q '"state": "downloading"' "$T/state"; then
    stop_qemu -KILL
    check PASS killed-mid-install "QEMU killed at $(cat "$T/state")"
else
    check FAIL killed-mid-install "the installation never got to 20 %: $(cat "$T/state")"; finish
fi
boots0=$(boots)
start_qemu
# Central may still count the killed guest's connection as up for a while: first the new boot.
K0=$(date +%s)
until [ "$(boots)" -gt "$boots0" ] || ! kill -0 "$QEMU" 2>/dev/null || [ $(( $(date +%s) - K0 )) -gt "$STEP_TIMEOUT" ]; do
    sleep 2
done
sleep 30
if central wait --version "$V_N1" --connected --timeout "$STEP_TIMEOUT" > "$T/state" && [ "$(last_slot)" = B ]; then
    check PASS boots-n1-after-kill "U-Boot booted slot B; central shows $V_N1: $(cat "$T/state")"
else
    check FAIL boots-n1-after-kill "last slot $(last_slot): $(cat "$T/state")"; finish
fi
if central wait --version "$V_N3" --state running --bundle "$bundle_n3" --timeout "$STEP_TIMEOUT" > "$T/state"; then
    check PASS installs-again "central offered $V_N3 again; the unit installed it and runs it: $(cat "$T/state")"
else
    check FAIL installs-again "$(cat "$T/state")"
fi
finish
