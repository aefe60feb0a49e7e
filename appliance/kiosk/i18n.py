"""The kiosk page's translation catalogue: gettext .po files read with Babel, as in central/i18n.py.

German is the default; the msgids are English so that translators for Turkish, Arabic,
Ukrainian or Russian can work from a language they are likely to read.

The page changes language without reloading (the citizen touches a language's name), so the
page script translates: template texts are marked ``data-t="msgid"`` (``data-t-label`` and
``data-t-alt`` for aria-label and alt), script texts are ``t('msgid')`` or ``N_('msgid')``.
``python -m appliance.kiosk.update_translations`` extracts both and merges them into every
catalogue; then translate what it added.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from babel import Locale
from babel.messages.pofile import read_po

from protocol.errors import AmtsklingelError

CATALOGUE_DIR = Path(__file__).parent / "translations"
DEFAULT_LANGUAGE = "de"
# The order of the language buttons; languages shipped later follow alphabetically.
ORDER = ("de", "en", "tr", "ar", "uk", "ru")
# Each language by its own name: a citizen looks for a word they can read, not for a flag.
OWN_NAMES = {"de": "Deutsch", "en": "English", "tr": "Türkçe", "ar": "العربية", "uk": "Українська", "ru": "Русский"}


class CatalogueError(AmtsklingelError, FileNotFoundError):
    """The kiosk's translations are missing or unreadable: the page cannot start."""


@dataclass(frozen=True)
class Language:
    code: str
    name: str        # in the language itself
    direction: str   # "ltr" | "rtl"
    messages: dict[str, str]

    def as_json(self) -> dict:
        return {"language": self.code, "name": self.name, "dir": self.direction, "messages": self.messages}


def load_language(path: Path) -> Language:
    code = path.parent.parent.name
    with path.open("rb") as f:
        cat = read_po(f, locale=code)
    locale = Locale.parse(code)
    name = OWN_NAMES.get(code) or locale.get_display_name(code).capitalize()
    direction = "rtl" if locale.character_order == "right-to-left" else "ltr"
    messages = {msg.id: msg.string for msg in cat if msg.id and msg.string and not msg.fuzzy}
    return Language(code, name, direction, messages)


class Catalogues:
    """Every shipped language, read once at start-up (a few kilobytes each)."""

    def __init__(self, directory: Path = CATALOGUE_DIR):
        paths = sorted(Path(directory).glob("*/LC_MESSAGES/messages.po"))
        self._languages = {lang.code: lang for lang in map(load_language, paths)}
        if DEFAULT_LANGUAGE not in self._languages:
            raise CatalogueError(f"{directory} has no {DEFAULT_LANGUAGE}/LC_MESSAGES/messages.po; "
                                 "the kiosk page needs at least the German catalogue")

    @property
    def codes(self) -> list[str]:
        rank = {code: i for i, code in enumerate(ORDER)}
        return sorted(self._languages, key=lambda code: (rank.get(code, len(ORDER)), code))

    def __contains__(self, code: object) -> bool:
        return code in self._languages

    def __getitem__(self, code: str) -> Language:
        return self._languages[code]

    def get(self, code: str | None) -> Language:
        """The language asked for, or German when it is not shipped."""
        return self._languages.get(code or "", self._languages[DEFAULT_LANGUAGE])
