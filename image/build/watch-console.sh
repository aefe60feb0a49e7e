#!/bin/bash
# watch-console.sh LOG PID TIMEOUT: follows the boot test's serial console (LOG) while the guest
# (QEMU, PID) runs, prints the self-test's lines as they come, and returns as soon as the outcome
# is known, without waiting for TIMEOUT seconds when the boot has already failed:
#   0   the self-test said DONE with no FAIL, and the guest powered off (or did not, within 60 s)
#   10  a check failed: returns when the self-test has printed its diagnosis and DONE (at most
#       WATCH_AFTER_FAIL seconds, default 120: the boot test's call goes on to its end after a FAIL)
#   11  the console shows emergency mode, a kernel panic, the initramfs giving up or a CPU
#       stuck for minutes: at once
#   12  the guest ended (power-off or reboot) before the self-test said DONE
#   13  TIMEOUT seconds passed
# The last line printed says which, and the console line that decided it. The caller stops QEMU.
set -euo pipefail
LOG=$1 PID=$2 TIMEOUT=$3
INTERVAL=${WATCH_INTERVAL:-2}
AFTER_FAIL=${WATCH_AFTER_FAIL:-120}
TAG=AMTSKLINGEL-SELFTEST
# Lines after which the boot cannot succeed any more: systemd's emergency or rescue mode (the
# image's own notice, or systemd's shell on an image without it), a kernel panic, the initramfs
# giving up on the root file system, a virtual CPU stuck for three minutes or more (an emulation
# livelock; shorter stalls happen on a busy host and pass).
FATAL='AMTSKLINGEL-EMERGENCY|emergency mode|Emergency Shell|root account is locked|Kernel panic|Dropping to a shell|Rebooting automatically due to panic|soft lockup - CPU#[0-9]+ stuck for ([1-9][0-9]{3,}|[2-9][0-9]{2}|1[89][0-9])s'

start=$(date +%s)
shown=0 done_at='' fail_at=''
verdict() { echo "watch-console: $1"; exit "$2"; }
while :; do
    running=1
    kill -0 "$PID" 2>/dev/null || running=0
    now=$(date +%s)
    lines=$(grep -a "$TAG" "$LOG" | grep -av "$TAG DIAG" | sed "s/^.*$TAG/$TAG/" | tr -d '\r' || true)
    count=$(printf '%s' "$lines" | grep -c . || true)
    if [ "$count" -gt "$shown" ]; then
        printf '%s\n' "$lines" | tail -n $((count - shown)) | sed "s/^/    [+$((now - start))s] /"
        shown=$count
    fi
    [ -n "$done_at" ] || ! grep -aq "$TAG DONE" "$LOG" || done_at=$now
    [ -n "$fail_at" ] || ! grep -aq "$TAG FAIL" "$LOG" || fail_at=$now
    # Not after a FAIL: the self-test's diagnosis quotes the journal, which may name these.
    if [ -z "$fail_at" ]; then
        fatal=$(grep -aE -m1 "$FATAL" "$LOG" | tr -d '\r' || true)
        [ -z "$fatal" ] || verdict "emergency mode or panic after $((now - start)) s: $fatal" 11
    fi
    if [ -n "$fail_at" ]; then
        if [ -n "$done_at" ] && { [ "$running" = 0 ] || [ $((now - done_at)) -ge 10 ]; }; then
            verdict "a check failed: $(grep -a -m1 "$TAG FAIL" "$LOG" | sed "s/^.*$TAG FAIL //" | tr -d '\r')" 10
        fi
        [ "$running" = 1 ] && [ $((now - fail_at)) -lt "$AFTER_FAIL" ] || verdict "a check failed, no DONE after it" 10
    elif [ -n "$done_at" ]; then
        [ "$running" = 1 ] && [ $((now - done_at)) -lt 60 ] || verdict "self-test done after $((now - start)) s" 0
    elif [ "$running" = 0 ]; then
        verdict "the guest ended after $((now - start)) s before the self-test finished" 12
    fi
    [ $((now - start)) -lt "$TIMEOUT" ] || verdict "timeout after $TIMEOUT s" 13
    sleep "$INTERVAL"
done
