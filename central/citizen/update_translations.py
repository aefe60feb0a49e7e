"""Developers: extract the citizen pages' texts and merge them into every citizen catalogue.

    .venv/bin/python -m central.citizen.update_translations

Sources (central/citizen/i18n.py says how each marks its texts): the templates under
central/templates/citizen/, the scripts under central/static/{citizen,home,booking,guest,devices}/, and T_("…")
anywhere in central's Python. New msgids arrive untranslated (the page then shows the English
msgid, and tests/central/test_citizen_translations.py fails until each language has them);
msgids no longer used are dropped.
"""
from __future__ import annotations

from pathlib import Path

from babel.messages.extract import extract_from_file

from central.citizen.i18n import CATALOGUE_DIR
from protocol.catalogues import update_catalogues as update_shared
from protocol.languages import CITIZEN_LANGUAGES

CENTRAL = Path(__file__).resolve().parent.parent
TEMPLATES = ("templates/citizen/**/*.html",)
SCRIPTS = ("static/citizen/**/*.js", "static/home/**/*.js", "static/booking/**/*.js", "static/guest/**/*.js",
           "static/devices/**/*.js")
PYTHON = ("**/*.py",)


def _files(patterns: tuple[str, ...]) -> list[Path]:
    return sorted({p for pattern in patterns for p in CENTRAL.glob(pattern)})


def extract_sources() -> set[str]:
    """Every msgid the citizen pages use."""
    found: set[str] = set()
    for path in _files(TEMPLATES):
        found.update(m for _, m, _, _ in extract_from_file("jinja2", path, keywords={"t": None}))
    for path in _files(SCRIPTS):
        found.update(m for _, m, _, _ in extract_from_file("javascript", path, keywords={"t": None, "N_": None}))
    for path in _files(PYTHON):
        found.update(m for _, m, _, _ in extract_from_file("python", path, keywords={"T_": None}))
    return {m for m in found if isinstance(m, str) and m}


def update_catalogues(directory: Path = CATALOGUE_DIR) -> None:
    update_shared(extract_sources(), directory, CITIZEN_LANGUAGES, project="Amtsklingel citizen pages")


if __name__ == "__main__":
    update_catalogues()
