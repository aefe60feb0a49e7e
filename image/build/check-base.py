#!/usr/bin/python3
"""Check a base of the image (image/build/base-*.sh) against its archives, without building anything.

    check-base.py debian|raspios

Takes the base's apt sources and package list exactly as build-image.sh does (lib.sh's
``base_packages`` after sourcing base-<name>.sh, with the same AMTSKLINGEL_* variables), then for
each source: fetches ``dists/<suite>/InRelease``, verifies its signature with the source's
``signed-by`` key (gpgv), checks that the release is that suite and carries arm64 and the
components asked for, fetches each component's ``binary-arm64/Packages`` index named there and
checks its SHA-256. Finally every package of the list, and everything it depends on (by name:
``Depends``/``Pre-Depends``, any one alternative, ``Provides`` counted; versions are left to apt),
must be in one of the sources. What is wrong is printed with what to do; exit status 1.

This is how the Raspberry Pi OS base is checked where its archive cannot be reached for a build:
tests/imagebuild/test_base_check.py writes archives in the published format
(https://wiki.debian.org/DebianRepository/Format) and runs this against them.
Runs on the build host: standard library, bash and gpgv only.
"""
from __future__ import annotations

import argparse
import bz2
import gzip
import hashlib
import lzma
import os
import re
import shlex
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ARCH = "arm64"
# Index files in the order they are preferred (what apt fetches first).
INDEX_NAMES = (("Packages.xz", lzma.decompress), ("Packages.gz", gzip.decompress),
               ("Packages.bz2", bz2.decompress), ("Packages", lambda data: data))
SOURCE_LINE = re.compile(r"^deb\s+\[(?P<options>[^\]]*)\]\s+(?P<uri>\S+)\s+(?P<suite>\S+)\s+(?P<components>.+)$")


class BaseError(Exception):
    """What is wrong with the base or its archive, in words for whoever builds the image."""


@dataclass
class Source:
    line: str
    uri: str
    suite: str
    components: list[str]
    keyring: Path
    packages: dict[str, str] = field(default_factory=dict)  # name (or virtual name) -> its Depends

    @property
    def where(self) -> str:
        return f"{self.uri} {self.suite} {' '.join(self.components)}"


def base_settings(base: str) -> tuple[list[str], list[str]]:
    """(apt source lines, packages) of ``base`` as build-image.sh takes them."""
    script = (f"set -euo pipefail; . {shlex.quote(str(HERE / 'lib.sh'))}; "
              f". {shlex.quote(str(HERE / f'base-{base}.sh'))}; base_packages {shlex.quote(str(HERE))}; "
              "printf 'source\\t%s\\n' \"${APT_SOURCES[@]}\"; printf 'package\\t%s\\n' \"${PACKAGES[@]}\"")
    if not (HERE / f"base-{base}.sh").is_file():
        raise BaseError(f"there is no base {base!r}: image/build has " + ", ".join(
            sorted(p.stem.removeprefix("base-") for p in HERE.glob("base-*.sh"))))
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True)
    if done.returncode != 0:
        raise BaseError(re.sub(r"\x1b\[[0-9;]*m", "", done.stderr).strip() or f"base-{base}.sh failed")
    sources = [line.split("\t", 1)[1] for line in done.stdout.splitlines() if line.startswith("source\t")]
    packages = [line.split("\t", 1)[1] for line in done.stdout.splitlines() if line.startswith("package\t")]
    return sources, packages


def parse_source(line: str) -> Source:
    found = SOURCE_LINE.match(line)
    if not found:
        raise BaseError(f"apt source {line!r} is not of the form 'deb [signed-by=KEY] URI SUITE COMPONENT...'")
    options = dict(o.split("=", 1) for o in found["options"].split() if "=" in o)
    if "signed-by" not in options:
        raise BaseError(f"apt source {line!r} names no key (signed-by=): its archive could not be trusted")
    return Source(line, found["uri"].rstrip("/"), found["suite"], found["components"].split(),
                  Path(options["signed-by"]))


def fetch(url: str) -> bytes:
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            return response.read()
    except (urllib.error.URLError, OSError) as exc:
        raise BaseError(f"cannot fetch {url}: {getattr(exc, 'reason', exc)}") from exc


def verified_release(source: Source) -> str:
    """The InRelease file's signed text, once gpgv accepts it with the source's key."""
    if not source.keyring.is_file():
        raise BaseError(f"the key {source.keyring} of {source.where} is missing")
    signed = fetch(f"{source.uri}/dists/{source.suite}/InRelease")
    with tempfile.TemporaryDirectory() as tmp:
        keyring = source.keyring
        if keyring.read_bytes().lstrip().startswith(b"-----BEGIN PGP"):  # an .asc key, as apt also takes
            keyring = Path(tmp) / "key.gpg"
            subprocess.run(["gpg", "--batch", "--yes", "--dearmor", "-o", str(keyring), str(source.keyring)],
                           check=True, capture_output=True)
        checked = subprocess.run(["gpgv", "--keyring", str(keyring.resolve()), "--output", "-"], input=signed,
                                 capture_output=True)
    if checked.returncode != 0:
        why = checked.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no signature"]
        raise BaseError(f"the release file of {source.uri} {source.suite} is not signed by the key "
                        f"{source.keyring} ({why[0]}): wrong key, or not that archive")
    return checked.stdout.decode()


def deb822(text: str) -> list[dict[str, str]]:
    """Stanzas of a Debian control-format file; continuation lines are kept with their newlines."""
    stanzas, current, key = [], {}, None
    for line in text.splitlines():
        if not line.strip():
            if current:
                stanzas.append(current)
            current, key = {}, None
        elif line[0] in " \t" and key:
            current[key] += "\n" + line.strip()
        elif ":" in line:
            key, value = line.split(":", 1)
            current[key] = value.strip()
    if current:
        stanzas.append(current)
    return stanzas


def check_release(source: Source, release: dict[str, str]) -> dict[str, tuple[str, int]]:
    """The release's SHA-256 list (path -> (hash, size)) once the release fits the source."""
    names = {release.get("Suite"), release.get("Codename")}
    if source.suite not in names:
        raise BaseError(f"{source.uri}: asked for suite {source.suite}, the archive's release is "
                        f"{' / '.join(sorted(n for n in names if n))}")
    if ARCH not in release.get("Architectures", "").split():
        raise BaseError(f"{source.where}: the archive has no {ARCH} packages "
                        f"(architectures: {release.get('Architectures', 'none')})")
    components = release.get("Components", "").split()
    # Debian's security archive lists its components as "updates/main" while sources and index paths
    # say "main"; apt takes either.
    absent = [c for c in source.components
              if not any(c in (listed, listed.rsplit("/", 1)[-1]) for listed in components)]
    if absent:
        raise BaseError(f"{source.where}: the archive has no component {', '.join(absent)} "
                        f"(it has {' '.join(components) or 'none'})")
    sums = {}
    for line in release.get("SHA256", "").splitlines():
        parts = line.split()
        if len(parts) == 3:
            sums[parts[2]] = (parts[0], int(parts[1]))
    return sums


def read_packages(source: Source, sums: dict[str, tuple[str, int]]) -> None:
    for component in source.components:
        listed = [(f"{component}/binary-{ARCH}/{name}", unpack) for name, unpack in INDEX_NAMES
                  if f"{component}/binary-{ARCH}/{name}" in sums]
        if not listed:
            raise BaseError(f"{source.where}: its release names no {component}/binary-{ARCH}/Packages index")
        path, unpack = listed[0]
        data = fetch(f"{source.uri}/dists/{source.suite}/{path}")
        digest, size = sums[path]
        if len(data) != size or hashlib.sha256(data).hexdigest() != digest:
            raise BaseError(f"{source.uri}/dists/{source.suite}/{path} does not match the SHA-256 its signed "
                            f"release gives: a broken mirror or a tampered file")
        for stanza in deb822(unpack(data).decode(errors="replace")):
            if stanza.get("Architecture", ARCH) not in (ARCH, "all") or "Package" not in stanza:
                continue
            depends = ", ".join(d for d in (stanza.get("Pre-Depends"), stanza.get("Depends")) if d)
            source.packages.setdefault(stanza["Package"], depends)
            for virtual in stanza.get("Provides", "").split(","):
                if virtual.strip():
                    source.packages.setdefault(virtual.split("(")[0].strip(), "")


def alternatives(depends: str) -> list[list[str]]:
    """``a (>= 1) | b, c:any`` -> [["a", "b"], ["c"]]; versions and architecture qualifiers dropped."""
    groups = []
    for group in depends.split(","):
        names = [re.split(r"[\s(:\[<]", alt.strip(), maxsplit=1)[0] for alt in group.split("|")]
        if any(names):
            groups.append([n for n in names if n])
    return groups


def unresolved(wanted: list[str], sources: list[Source]) -> list[str]:
    """What cannot be installed from ``sources``: a listed package not found, or a dependency none of
    whose alternatives is found, each with the package that needs it."""
    def find(name: str) -> Source | None:
        return next((s for s in sources if name in s.packages), None)
    problems, seen, todo = [], set(), [(name, None) for name in wanted]
    while todo:
        name, needed_by = todo.pop(0)
        if name in seen:
            continue
        seen.add(name)
        source = find(name)
        if source is None:
            problems.append(f"{name} (needed by {needed_by})" if needed_by else name)
            continue
        for group in alternatives(source.packages[name]):
            choice = next((alt for alt in group if find(alt) is not None), None)
            if choice is None:
                problems.append(f"{' | '.join(group)} (needed by {name})")
            else:
                todo.append((choice, name))
    return problems


def check(base: str) -> str:
    """A summary of what was checked; BaseError with every problem found."""
    lines, packages = base_settings(base)
    sources = [parse_source(line) for line in lines]
    for source in sources:
        release = deb822(verified_release(source))
        read_packages(source, check_release(source, release[0] if release else {}))
    problems = unresolved(packages, sources)
    if problems:
        raise BaseError(f"base {base}: not in any of its archives ({'; '.join(s.where for s in sources)}):\n  "
                        + "\n  ".join(problems)
                        + "\nCheck the names in image/build/packages.txt and base-*.sh, the suite "
                          "(AMTSKLINGEL_SUITE) and the archives' addresses.")
    origin = {name: next(s for s in sources if name in s.packages).uri for name in packages}
    by_source = {s.uri: sorted(n for n, uri in origin.items() if uri == s.uri) for s in sources}
    summary = [f"base {base}: {len(packages)} packages and what they depend on are in its archives; "
               f"every release signed by its key"]
    summary += [f"  {uri}: {len(names)} listed packages" + (f" ({', '.join(names)})" if len(names) <= 8 else "")
                for uri, names in by_source.items() if names]
    return "\n".join(summary)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("base", nargs="?", default=os.environ.get("AMTSKLINGEL_BASE", "debian"))
    args = parser.parse_args(argv)
    try:
        print(check(args.base))
    except BaseError as exc:
        print(f"check-base: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
