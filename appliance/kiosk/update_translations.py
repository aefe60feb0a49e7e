"""Developers: extract the kiosk page's texts and merge them into every catalogue.

    .venv/bin/python -m appliance.kiosk.update_translations

Template texts are data-t / data-t-label / data-t-alt attributes, script texts t('…') or
N_('…') calls. New msgids arrive untranslated (the page then shows the English msgid);
msgids no longer used are dropped.
"""
from __future__ import annotations

import html
import re
from pathlib import Path

from babel.messages.extract import extract_from_file

from appliance.kiosk.i18n import CATALOGUE_DIR
from protocol.catalogues import update_catalogues as update_shared

KIOSK_DIR = Path(__file__).parent
DATA_T = re.compile(r'data-t(?:-label|-alt)?="([^"]+)"')


def extract_data_t(fileobj, keywords, comment_tags, options):
    """Babel extractor for the template's data-t, data-t-label and data-t-alt attributes."""
    for lineno, line in enumerate(fileobj.read().decode("utf-8").splitlines(), 1):
        for match in DATA_T.finditer(line):
            yield lineno, None, html.unescape(match.group(1)), []


def extract_sources() -> set[str]:
    """Every msgid the page uses, from the template and the page scripts."""
    found: set[str] = set()
    for path in sorted((KIOSK_DIR / "templates").glob("*.html")):
        found.update(msg for _, msg, _, _ in extract_from_file(extract_data_t, path))
    for path in sorted((KIOSK_DIR / "static").glob("*.js")):
        found.update(msg for _, msg, _, _ in extract_from_file("javascript", path, keywords={"t": None, "N_": None}))
    return found


def update_catalogues(directory: Path = CATALOGUE_DIR) -> None:
    """Merge into every catalogue there is (one per citizen language, protocol/languages.py)."""
    languages = [path.parent.parent.name for path in sorted(directory.glob("*/LC_MESSAGES/messages.po"))]
    update_shared(extract_sources(), directory, languages, project="Amtsklingel kiosk")


if __name__ == "__main__":
    update_catalogues()
