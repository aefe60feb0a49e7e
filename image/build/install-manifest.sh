#!/bin/bash
# Installs the repository's files into a root file system exactly as image/config/MANIFEST lists them.
#   install-manifest.sh install REPO ROOT   create files, links and directories (owned by root for
#                                           now); prints each target installed
#   install-manifest.sh chown REPO ROOT     give them their owners (after systemd-sysusers made them)
# MANIFEST entries (see its header):
#   file  SOURCE       TARGET  MODE  OWNER:GROUP
#   link  LINK-TARGET  TARGET  -     root:root
#   dir   -            TARGET  MODE  OWNER:GROUP
set -euo pipefail
HERE=$(cd "$(dirname "$(readlink -f "$0")")" && pwd)
# shellcheck source=lib.sh
. "$HERE/lib.sh"
ACTION=$1 REPO=$2 R=$3
MANIFEST=${AMTSKLINGEL_MANIFEST:-$REPO/image/config/MANIFEST}
[ -r "$MANIFEST" ] || { note "no $MANIFEST: nothing installed from it" >&2; exit 0; }

lineno=0
while IFS= read -r line || [ -n "$line" ]; do
    lineno=$((lineno + 1))
    line=${line%%#*}
    read -r -a f <<< "$line"
    [ ${#f[@]} -eq 0 ] && continue
    [ ${#f[@]} -eq 5 ] || die "$MANIFEST:$lineno: expected KIND SOURCE TARGET MODE OWNER:GROUP, got: $line"
    kind=${f[0]} src=${f[1]} dst=${f[2]} mode=${f[3]} owner=${f[4]}
    [[ $dst == /* ]] || die "$MANIFEST:$lineno: target $dst is not absolute"
    [[ $owner == *:* ]] || die "$MANIFEST:$lineno: owner $owner is not OWNER:GROUP"
    [[ $kind == link || $mode =~ ^[0-7]{3,4}$ ]] || die "$MANIFEST:$lineno: mode $mode is not octal"
    case $ACTION:$kind in
        install:file)
            [ -f "$REPO/$src" ] || die "$MANIFEST:$lineno: $src is not a file in the repository"
            install -D -m "$mode" -o root -g root "$REPO/$src" "$R$dst" ;;
        install:link)
            install -d "$R$(dirname "$dst")"
            # A package's empty directory (/etc/systemd/network) gives way to the link.
            if [ -d "$R$dst" ] && [ ! -L "$R$dst" ]; then
                rmdir "$R$dst" 2>/dev/null || die "$MANIFEST:$lineno: $dst is a directory with files in the image"
            fi
            ln -sfn "$src" "$R$dst" ;;
        install:dir)
            install -d -m "$mode" -o root -g root "$R$dst" ;;
        chown:file|chown:dir)
            [ "$owner" = root:root ] || chroot "$R" chown "$owner" "$dst" ;;
        chown:link) ;;
        *) die "$MANIFEST:$lineno: unknown kind $kind (file, link, dir)" ;;
    esac
    if [ "$ACTION" = install ]; then echo "$dst"; fi
done < "$MANIFEST"
