# Shared helpers of the image scripts (sourced, not run).
# shellcheck shell=bash

say() { printf '\033[1m==> [%s] %s\033[0m\n' "$(date +%H:%M:%S)" "$*"; }
note() { printf '    %s\n' "$*"; }
die() { printf '\033[1;31mimage: %s\033[0m\n' "$*" >&2; exit 1; }

need_root() {
    [ "$(id -u)" = 0 ] || die "run this as root (it creates file systems and a chroot): sudo $0"
}

# Install Debian host tools that are missing; $1.. are "command:package" pairs, or "/path:package"
# for a file a program needs (QEMU's option ROMs).
need_host_tools() {
    local missing=() pair item
    for pair in "$@"; do
        item=${pair%%:*}
        if [[ $item == /* ]]; then
            [ -e "$item" ] || missing+=("${pair#*:}")
        else
            command -v "$item" >/dev/null 2>&1 || missing+=("${pair#*:}")
        fi
    done
    [ ${#missing[@]} -eq 0 ] && return
    say "Installing host tools: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q || true
    apt-get install -y -q --no-install-recommends "${missing[@]}"
}

# Running arm64 binaries in the chroot needs binfmt_misc mounted and the qemu handler enabled;
# neither survives a reboot (nor a fresh container), so this runs on every build.
enable_binfmt() {
    if ! mountpoint -q /proc/sys/fs/binfmt_misc; then
        mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
    fi
    update-binfmts --enable qemu-aarch64 >/dev/null 2>&1 || true
    [ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] ||
        die "binfmt handler qemu-aarch64 not registered (is qemu-user-static installed?)"
    grep -q '^flags:.*F' /proc/sys/fs/binfmt_misc/qemu-aarch64 ||
        die "binfmt qemu-aarch64 lacks the F (fix binary) flag; a chroot cannot run arm64 programs"
}

# A stable UUID from a seed string, so that file system and disk IDs do not change between builds.
seed_uuid() {
    local h
    h=$(printf '%s' "$1" | sha256sum | cut -c1-32)
    printf '%s-%s-4%s-8%s-%s\n' "${h:0:8}" "${h:8:4}" "${h:13:3}" "${h:17:3}" "${h:20:12}"
}

# Lines of a list file without comments and blank lines.
list_file() { sed -e 's/#.*//' -e 's/[[:space:]]*$//' -e '/^$/d' "$@"; }

# PACKAGES: the image's Debian packages for the base sourced last (base-*.sh): packages.txt in the
# build directory $1, without the base's PACKAGES_DROP, with its BASE_PACKAGES. The build and
# check-base.py take the list from here.
base_packages() {
    local drop i
    mapfile -t PACKAGES < <(list_file "$1/packages.txt")
    for drop in "${PACKAGES_DROP[@]}"; do
        for i in "${!PACKAGES[@]}"; do
            if [ "${PACKAGES[$i]}" = "$drop" ]; then unset 'PACKAGES[i]'; fi
        done
    done
    PACKAGES=("${PACKAGES[@]}" "${BASE_PACKAGES[@]}")
}
