"""The citizen pages' translation catalogue: every language of :data:`protocol.languages.CITIZEN_LANGUAGES`.

Kept apart from the staff catalogue (central/i18n.py, German and English): a citizen page must speak
Turkish, Arabic, Ukrainian and Russian as well, and the staff catalogue should not have to. The msgids
are English. Marks, each extracted by ``python -m central.citizen.update_translations``:

- templates (central/templates/citizen/): ``t("msgid")`` or ``t("... %(n)s", n=3)``;
- page scripts (central/static/citizen/, home/, booking/): ``t('msgid')``, or ``N_('msgid')`` for a text
  translated later (scripts get the whole catalogue of their page's language, see pages.py);
- Python (any module of central/): ``T_("msgid")``, a mark only; translate with ``CitizenLanguage.gettext``.

Writing direction comes from Babel's locale data, as on the kiosk page (appliance/kiosk/i18n.py).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

from babel import Locale
from babel.messages.pofile import read_po

from protocol.errors import AmtsklingelError
from protocol.languages import CITIZEN_LANGUAGES

CATALOGUE_DIR = Path(__file__).parent / "translations"
DEFAULT_LANGUAGE = "de"
# Each language by its own name: a citizen looks for a word they can read, not for a flag.
OWN_NAMES = {"de": "Deutsch", "en": "English", "tr": "Türkçe", "ar": "العربية", "uk": "Українська", "ru": "Русский"}


class CitizenCatalogueError(AmtsklingelError, FileNotFoundError):
    """A citizen language's catalogue is missing or unreadable: central cannot serve citizen pages."""


def T_(msgid: str) -> str:
    """Mark a citizen text in Python for the catalogue; translate it where the page's language is known."""
    return msgid


@dataclass(frozen=True)
class CitizenLanguage:
    code: str
    name: str        # in the language itself
    direction: str   # "ltr" | "rtl"
    messages: dict[str, str]
    locale: Locale

    def gettext(self, msgid: str, **values: object) -> str:
        text = self.messages.get(msgid, msgid)
        return text % values if values else text


def _load(code: str) -> CitizenLanguage:
    path = CATALOGUE_DIR / code / "LC_MESSAGES" / "messages.po"
    try:
        with path.open("rb") as f:
            cat = read_po(f, locale=code)
    except OSError as exc:
        raise CitizenCatalogueError(f"{path} cannot be read ({exc.strerror}); every citizen language needs its "
                                    "catalogue: run python -m central.citizen.update_translations") from None
    locale = Locale.parse(code)
    return CitizenLanguage(code=code, name=OWN_NAMES.get(code) or locale.get_display_name(code).capitalize(),
                           direction="rtl" if locale.character_order == "right-to-left" else "ltr",
                           messages={m.id: m.string for m in cat if m.id and m.string and not m.fuzzy},
                           locale=locale)


@cache
def languages() -> dict[str, CitizenLanguage]:
    """Every citizen language, in the order of the language chooser; read once (they change with a release)."""
    return {code: _load(code) for code in CITIZEN_LANGUAGES}


def negotiate(chosen: str | None, cookie: str | None, accept_language: str | None) -> CitizenLanguage:
    """The language just chosen (``?lang=``), else the one chosen before (cookie), else the browser's
    first citizen language, else German."""
    known = languages()
    for code in (chosen, cookie):
        if code in known:
            return known[code]
    for part in (accept_language or "").split(","):
        tag = part.split(";")[0].strip().lower()[:2]
        if tag in known:
            return known[tag]
    return known[DEFAULT_LANGUAGE]


__all__ = ["CATALOGUE_DIR", "CitizenCatalogueError", "CitizenLanguage", "DEFAULT_LANGUAGE", "T_", "languages",
           "negotiate"]
