#!/bin/bash
# Installs the repository's part into a copy of the base root file system ($1): the appliance code,
# the files of image/config/MANIFEST (units, udev rules, configuration), the boot-test hook; then
# users, enabled units, locked accounts, the read-only layout, and clean-up for reproducibility.
set -euo pipefail
R=$1
HERE=$AMTSKLINGEL_BUILD_DIR
REPO=$AMTSKLINGEL_REPO
# shellcheck source=lib.sh
. "$HERE/lib.sh"
# LG_WD: importing lgpio makes its notification pipe (.lgd-nfy0) there, not in the image's /.
in_chroot() {
    chroot "$R" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C.UTF-8 HOME=/root \
        SOURCE_DATE_EPOCH="$SOURCE_DATE_EPOCH" LG_WD=/tmp "$@"
}
LIB=/usr/lib/amtsklingel
# systemctl and friends in the chroot want /proc.
mount -t proc proc "$R/proc"
trap 'umount "$R/proc"' EXIT

# ---- the appliance: code next to its environment ------------------------------------------------
note "appliance and protocol packages -> $LIB/python"
install -d "$R$LIB/python"
tar -C "$REPO" --sort=name --exclude=__pycache__ --exclude='*.pyc' --exclude=appliance/sim \
    -cf - appliance protocol | tar -C "$R$LIB/python" --no-same-owner -xf -
site=$(cd "$R" && echo usr/lib/amtsklingel/venv/lib/python3*/site-packages)
[ -d "$R/$site" ] || die "no venv site-packages in the base ($site)"
echo "$LIB/python" > "$R/$site/amtsklingel.pth"
# Byte code now: the root file system is read-only at run time. checked-hash pycs do not depend
# on file times (and python uses that mode by itself when SOURCE_DATE_EPOCH is set).
in_chroot $LIB/venv/bin/python -m compileall -q --invalidation-mode checked-hash "$LIB/python" "/$site" >/dev/null
in_chroot $LIB/venv/bin/python -c 'import appliance.__main__, appliance.hardware.pi.backend, appliance.hardware.fake.backend' ||
    die "the appliance does not import in the image's Python"
# The hardware libraries the pi backend loads lazily (picamera2 only exists on the raspios base).
in_chroot $LIB/venv/bin/python - <<'PY'
import importlib
found = []
for name in ("gpiozero", "lgpio", "alsaaudio", "livekit.rtc", "libcamera", "picamera2", "systemd.daemon"):
    try:
        importlib.import_module(name)
        found.append(name)
    except Exception as exc:
        found.append(f"{name} MISSING ({type(exc).__name__})")
print("    python modules:", ", ".join(found))
PY

# ---- image identity ----------------------------------------------------------------------------
cat > "$R$LIB/image-release" <<REL
IMAGE_VERSION=$AMTSKLINGEL_IMAGE_VERSION
IMAGE_COMMIT=$AMTSKLINGEL_COMMIT
IMAGE_BASE=$AMTSKLINGEL_BASE
IMAGE_SUITE=$AMTSKLINGEL_SUITE_NAME
SOURCE_DATE_EPOCH=$SOURCE_DATE_EPOCH
REL
osrel=$(readlink -f "$R/etc/os-release"); osrel=$R${osrel#"$R"}
[ -f "$osrel" ] || osrel=$R/usr/lib/os-release
sed -i '/^IMAGE_ID=/d;/^IMAGE_VERSION=/d' "$osrel"
printf 'IMAGE_ID=amtsklingel\nIMAGE_VERSION=%s\n' "$AMTSKLINGEL_IMAGE_VERSION" >> "$osrel"
echo amtsklingel > "$R/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\tamtsklingel\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' > "$R/etc/hosts"

# ---- the repository's files ---------------------------------------------------------------------
mapfile -t installed < <("$HERE/install-manifest.sh" install "$REPO" "$R")
note "${#installed[@]} entries from image/config/MANIFEST"
# The read-only layout (root ro, /var and /tmp in RAM, boot and data partitions by GPT name)
# is image/config/fstab; without it the image would not boot as designed.
grep -q '^/dev/root[[:space:]]\+/[[:space:]].*\<ro\>' "$R/etc/fstab" ||
    die "/etc/fstab from image/config/MANIFEST missing or without a read-only root entry"
# Central's address (and the city's CA) and the update keyring for every unit: ./build.sh image
# --central URL [--ca FILE] [--update-keyring FILE]. Without --central the image's defaults from the
# MANIFEST stay, and each unit needs central_url in the appliance.toml on its boot partition; without
# --update-keyring RAUC refuses every bundle.
if [ -n "${AMTSKLINGEL_CENTRAL_URL:-}${AMTSKLINGEL_UPDATE_KEYRING:-}" ]; then
    note "built-in settings: $("$HERE/builtin-settings.py" write ${AMTSKLINGEL_CENTRAL_URL:+--central "$AMTSKLINGEL_CENTRAL_URL"} \
        ${AMTSKLINGEL_CENTRAL_CA:+--ca "$AMTSKLINGEL_CENTRAL_CA"} ${AMTSKLINGEL_UPDATE_KEYRING:+--update-keyring "$AMTSKLINGEL_UPDATE_KEYRING"} \
        --defaults "$REPO/image/config/appliance.toml" --root "$R")"
fi
[ -s "$R/usr/share/amtsklingel/appliance.toml" ] ||
    die "/usr/share/amtsklingel/appliance.toml (image/config/appliance.toml in image/config/MANIFEST) missing"

# The boot test's hook: inert unless the kernel command line says amtsklingel.selftest=1.
install -D -m 0755 "$HERE/selftest/amtsklingel-selftest-generator" "$R/usr/lib/systemd/system-generators/amtsklingel-selftest-generator"
install -D -m 0644 "$HERE/selftest/amtsklingel-selftest.service" "$R$LIB/selftest/amtsklingel-selftest.service"
install -D -m 0644 "$HERE/selftest/amtsklingel-selftest-emergency.service" "$R$LIB/selftest/amtsklingel-selftest-emergency.service"
install -D -m 0755 "$HERE/selftest/selftest.py" "$R$LIB/selftest/selftest.py"
for module in "$HERE"/selftest/*.py; do   # its checks, by role
    [ "$(basename "$module")" = selftest.py ] || install -m 0644 "$module" "$R$LIB/selftest/"
done
# Which unit is the appliance (the one starting "python -m appliance"), for the self-test.
appliance_unit=
for t in "${installed[@]}"; do
    [[ $t == *.service ]] || continue
    if sed -n 's/^ExecStart=//p' "$R$t" | grep -q -- '-m appliance'; then appliance_unit=$(basename "$t"); fi
done
[ -n "$appliance_unit" ] || die "no unit in image/config/MANIFEST starts the appliance (python -m appliance)"
printf 'APPLIANCE_UNIT=%s\n' "$appliance_unit" > "$R$LIB/selftest/selftest.env"
note "appliance unit: $appliance_unit"

# ---- the slot's kernel for U-Boot -------------------------------------------------------------------
# The boot script (image/config/boot/boot.cmd) loads /boot/vmlinuz and /boot/initrd.img from the slot
# it boots: links to this root's kernel (the newest; on the Raspberry Pi OS base the generic v8 one,
# which runs on the Pi 4 and the Pi 5).
kver=$(cd "$R/boot" && ls vmlinuz-* | sed 's/^vmlinuz-//' | grep -v -- '-2712$' | sort -V | tail -1)
[ -n "$kver" ] && [ -e "$R/boot/initrd.img-$kver" ] || die "no kernel and initrd in $R/boot"
ln -sfn "vmlinuz-$kver" "$R/boot/vmlinuz"
ln -sfn "initrd.img-$kver" "$R/boot/initrd.img"
note "slot kernel: /boot/vmlinuz -> vmlinuz-$kver"

# ---- users, units -------------------------------------------------------------------------------
in_chroot systemd-sysusers
"$HERE/install-manifest.sh" chown "$REPO" "$R"
for t in "${installed[@]}"; do
    case $t in
        /etc/systemd/system/*|/usr/lib/systemd/system/*) ;;
        *) continue ;;
    esac
    case $t in *.service|*.timer|*.socket|*.path|*.target) ;; *) continue ;; esac
    [[ $t == */*.d/* ]] && continue
    [ -L "$R$t" ] && continue   # masks and aliases
    if grep -qE '^(WantedBy|RequiredBy|UpheldBy)=' "$R$t"; then
        in_chroot systemctl enable --quiet "$(basename "$t")"
        note "enabled $(basename "$t")"
    fi
done
# Preset files from the repository say what is enabled and disabled; applied to the units they
# name (not preset-all: Debian enables every unit no preset mentions).
mapfile -t presets < <(printf '%s\n' "${installed[@]}" | grep '/system-preset/.*\.preset$' || true)
if [ ${#presets[@]} -gt 0 ]; then
    mapfile -t preset_units < <(cat "${presets[@]/#/$R}" | sed -e 's/#.*//' | awk '$1 == "enable" || $1 == "disable" {print $2}' | LC_ALL=C sort -u)
    for unit in "${preset_units[@]}"; do
        in_chroot systemctl preset --quiet "$unit" 2>/dev/null || note "preset: no unit $unit in the image"
    done
    note "presets applied to ${#preset_units[@]} units"
else
    # Without presets: SSH stays off (provisioning turns it on with a key).
    in_chroot systemctl disable --quiet ssh.service ssh.socket 2>/dev/null || true
fi
# Host keys are made per unit on the data partition, never shipped in the image.
rm -f "$R"/etc/ssh/ssh_host_*

# ---- no password anywhere --------------------------------------------------------------------------
# '!*': no password can match and none is set; root included. (An empty field would mean "no
# password needed", which is why passwd -d is not used.)
day=$((SOURCE_DATE_EPOCH / 86400))
awk -F: -v OFS=: -v day="$day" '{ $2 = "!*"; if ($3 != "") $3 = day; print }' "$R/etc/shadow" > "$R/etc/shadow.new"
cat "$R/etc/shadow.new" > "$R/etc/shadow" && rm "$R/etc/shadow.new"
awk -F: -v OFS=: '{ $2 = "!*"; print }' "$R/etc/gshadow" > "$R/etc/gshadow.new"
cat "$R/etc/gshadow.new" > "$R/etc/gshadow" && rm "$R/etc/gshadow.new"

# ---- clean-up: nothing per build, nothing per unit ---------------------------------------------------
# An empty machine-id: systemd makes a fresh one in RAM at each boot (the root is read-only) and does
# not treat every boot as a first boot.
: > "$R/etc/machine-id"
rm -f "$R/var/lib/dbus/machine-id"
rm -f "$R"/etc/{passwd,group,shadow,gshadow,subuid,subgid}- "$R/var/cache/ldconfig/aux-cache" \
      "$R"/var/lib/dpkg/*-old "$R"/var/cache/debconf/*-old
find "$R/var/log" "$R/tmp" "$R/var/tmp" -mindepth 1 -delete
rm -f "$R"/.lgd-nfy*
rm -rf "$R/root/.cache"
# File times no later than SOURCE_DATE_EPOCH (mke2fs copies them into the image).
find "$R" -xdev -newermt "@$SOURCE_DATE_EPOCH" -print0 | xargs -0r touch --no-dereference --date="@$SOURCE_DATE_EPOCH"
