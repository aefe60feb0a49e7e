"""Merging a page's texts into its Gettext catalogues: the one step the developers' update_translations of
the kiosk page (appliance/kiosk/) and of central's citizen pages (central/citizen/) share.

Each side extracts the msgids of its own templates and scripts and hands them here, so both merge alike:
new msgids arrive untranslated, msgids no longer used are dropped, and nothing is guessed (no fuzzy
matching). Kept in protocol/ because the appliance may not import central, as with the languages
(protocol/languages.py).
"""
from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po, write_po


def template_catalogue(msgids: Iterable[str]) -> Catalog:
    """The catalogue of ``msgids`` without translations (a msgid with ``%(name)s`` is python-format)."""
    template = Catalog()
    for msgid in sorted(msgids):
        template.add(msgid, flags=("python-format",) if "%(" in msgid else ())
    return template


def update_catalogues(msgids: Iterable[str], directory: Path, languages: Iterable[str], *, project: str) -> None:
    """Merge ``msgids`` into ``directory/<language>/LC_MESSAGES/messages.po`` of each language (a missing
    catalogue is started for ``project``) and say on stderr how many texts each still lacks."""
    template = template_catalogue(msgids)
    for code in languages:
        path = directory / code / "LC_MESSAGES" / "messages.po"
        if path.exists():
            with path.open("rb") as f:
                cat = read_po(f, locale=code)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            cat = Catalog(locale=code, project=project, fuzzy=False)
        cat.update(template, no_fuzzy_matching=True)
        with path.open("wb") as f:
            write_po(f, cat, no_location=True, sort_output=True, ignore_obsolete=True, width=100)
        missing = sum(1 for msg in cat if msg.id and not msg.string)
        print(f"{path.relative_to(directory)}: {missing} untranslated", file=sys.stderr)
