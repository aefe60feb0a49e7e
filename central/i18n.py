"""One translation catalogue for every UI string: gettext .po files read with Babel.

German is the default; the msgids are English so that translators for Turkish,
Arabic or Ukrainian can work from a language they are likely to read.
"""
from __future__ import annotations

from collections.abc import Callable
from functools import cache
from pathlib import Path

from babel.messages.pofile import read_po

CATALOGUE_DIR = Path(__file__).parent / "translations"
DEFAULT_LOCALE = "de"
LANGUAGE_NAMES = {"de": "Deutsch", "en": "English"}


def N_(msgid: str) -> str:
    """Mark a string for the catalogue without translating it here (e.g. strings for scripts)."""
    return msgid


@cache
def available_locales() -> tuple[str, ...]:
    """Shipped catalogues; read once, since they only change with a release."""
    return tuple(sorted(p.name for p in CATALOGUE_DIR.iterdir() if (p / "LC_MESSAGES" / "messages.po").exists()))


@cache
def catalogue(locale: str) -> dict[str, str]:
    path = CATALOGUE_DIR / locale / "LC_MESSAGES" / "messages.po"
    with path.open("rb") as f:
        cat = read_po(f, locale=locale)
    return {msg.id: msg.string for msg in cat if msg.id and msg.string and not msg.fuzzy}


def gettext_for(locale: str) -> Callable[..., str]:
    table = catalogue(locale if locale in available_locales() else DEFAULT_LOCALE)

    def _(msgid: str, **values: object) -> str:
        text = table.get(msgid, msgid)
        return text % values if values else text
    return _


def negotiate(cookie: str | None, accept_language: str | None) -> str:
    """The cookie's choice, else the browser's first supported language, else German."""
    locales = available_locales()
    if cookie in locales:
        return cookie
    for part in (accept_language or "").split(","):
        tag = part.split(";")[0].strip().lower()[:2]
        if tag in locales:
            return tag
    return DEFAULT_LOCALE


__all__ = ["N_", "available_locales", "catalogue", "gettext_for", "negotiate"]
