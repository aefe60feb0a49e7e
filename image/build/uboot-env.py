#!/usr/bin/python3
"""U-Boot's own environment for the Pi: the default environment built into u-boot.bin, with changes.

    uboot-env.py U-BOOT.BIN NAME=VALUE...    prints it as text, one NAME=VALUE a line, for mkenvimage

The Pi's U-Boot (rpi_arm64) loads ``uboot.env`` from the boot partition, when there is one, as its
whole environment instead of the built-in one. The image ships that file with the built-in values
and ``bootdelay=-2``: U-Boot then starts the boot script without a countdown that a USB keyboard
could interrupt to reach U-Boot's prompt. Run on the build host; standard library only.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

ENTRY = re.compile(rb"[A-Za-z_][A-Za-z0-9_#.]*=[\x20-\x7e\t]*")
# Without these the extracted block is not U-Boot's default environment, and the Pi would not boot.
NEEDED = ("bootcmd", "kernel_addr_r", "ramdisk_addr_r", "scriptaddr", "stdin", "stdout")


class EnvError(Exception):
    """What is wrong with the U-Boot binary; printed as it is."""


def default_environment(binary: bytes) -> list[tuple[str, str]]:
    """The built-in environment: NUL-separated NAME=VALUE entries ending in two NULs, found
    around its bootcmd= entry."""
    at = binary.find(b"\0bootcmd=")
    if at < 0:
        raise EnvError("no built-in environment (bootcmd=) found: is this a U-Boot binary?")
    start = at + 1
    while True:
        before = binary.rfind(b"\0", 0, start - 1)
        if before < 0 or not ENTRY.fullmatch(binary[before + 1:start - 1]):
            break
        start = before + 1
    end = binary.find(b"\0\0", at + 1)
    entries = binary[start:end].split(b"\0")
    if not all(ENTRY.fullmatch(e) for e in entries):
        raise EnvError("the built-in environment has entries that are not NAME=VALUE text")
    pairs = [tuple(e.decode("ascii").split("=", 1)) for e in entries]
    missing = [name for name in NEEDED if name not in dict(pairs)]
    if missing:
        raise EnvError(f"the built-in environment lacks {', '.join(missing)}")
    return pairs


def main(argv: list[str]) -> int:
    if len(argv) < 1:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        env = dict(default_environment(Path(argv[0]).read_bytes()))
        for change in argv[1:]:
            name, sep, value = change.partition("=")
            if not sep or not ENTRY.fullmatch(change.encode("ascii")):
                raise EnvError(f"{change!r} is not NAME=VALUE")
            env[name] = value
    except (EnvError, OSError) as exc:
        print(f"uboot-env: {argv[0]}: {exc}", file=sys.stderr)
        return 1
    sys.stdout.write("".join(f"{name}={value}\n" for name, value in env.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
