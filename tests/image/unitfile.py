"""A reader for systemd unit files that keeps what the tests look at: the comments.

systemd's own parser (``systemd-analyze verify``) decides whether a unit is valid; this
one only lists the directives in order, each with its section and the line before it,
so tests can check that a directive is present and that a comment says why.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Directive:
    section: str
    key: str
    value: str
    line: int
    previous: str  # the line just above, stripped ("" for a blank line)


def read(path: Path) -> list[Directive]:
    directives: list[Directive] = []
    section = ""
    previous = ""
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.strip()
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
        elif line and not line.startswith(("#", ";")):
            if raw.rstrip().endswith("\\"):
                raise ValueError(f"{path}:{number}: continuation lines are not used in our units")
            key, _, value = line.partition("=")
            directives.append(Directive(section, key.strip(), value.strip(), number, previous))
        previous = line
    return directives


def values(directives: list[Directive], key: str, section: str = "Service") -> list[str]:
    return [d.value for d in directives if d.key == key and d.section == section]
