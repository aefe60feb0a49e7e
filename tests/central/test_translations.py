"""The translation catalogues: up to date with the sources, complete, and used by the rendered pages."""
from __future__ import annotations

import html
import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po

from central.hours import OfficeHours
from central.i18n import CATALOGUE_DIR, gettext_for
from central.web.admin import forms

ROOT = Path(__file__).resolve().parents[2]
LOCALES = ("de", "en")
PLACEHOLDER_RE = re.compile(r"%\((\w+)\)[sd]")
STRINGS_RE = re.compile(r'<script type="application/json" id="strings">(.*?)</script>', re.S)


def load(path: Path, locale: str | None = None) -> Catalog:
    with path.open("rb") as f:
        return read_po(f, locale=locale)


def messages(catalog: Catalog) -> dict[str, object]:
    return {m.id: m for m in catalog if m.id}


@pytest.fixture(scope="module")
def extracted(tmp_path_factory) -> set[str]:
    """The msgids in the sources now, extracted exactly as tools/update-translations does."""
    pot = tmp_path_factory.mktemp("i18n") / "messages.pot"
    pybabel = Path(sys.executable).parent / "pybabel"
    subprocess.run([str(pybabel), "extract", "-F", "babel.cfg", "-k", "_", "-k", "N_", "-o", str(pot),
                    "--no-location", "--omit-header", "--sort-output", "."],
                   cwd=ROOT, check=True, capture_output=True)
    return set(messages(load(pot)))


@pytest.fixture(scope="module", params=LOCALES)
def po(request) -> tuple[str, Catalog]:
    locale = request.param
    return locale, load(CATALOGUE_DIR / locale / "LC_MESSAGES" / "messages.po", locale)


def test_catalogue_matches_the_sources(extracted, po):
    locale, catalog = po
    ids = set(messages(catalog))
    missing, stale = sorted(extracted - ids), sorted(ids - extracted)
    assert not missing and not stale, (
        f"{locale}/messages.po is out of date; run tools/update-translations and translate the new strings.\n"
        f"missing: {missing}\nno longer in the sources: {stale}")


def test_template_matches_the_sources(extracted):
    committed = set(messages(load(CATALOGUE_DIR / "messages.pot")))
    assert committed == extracted, "messages.pot is out of date; run tools/update-translations"


def test_every_string_is_translated(po):
    locale, catalog = po
    untranslated = [m.id for m in catalog if m.id and not (m.string and str(m.string).strip())]
    fuzzy = [m.id for m in catalog if m.id and m.fuzzy]
    assert not untranslated, f"{locale}: no translation for {untranslated}"
    assert not fuzzy, f"{locale}: fuzzy (unchecked) translations for {fuzzy}"


def test_header(po):
    locale, catalog = po
    assert not catalog.fuzzy, f"{locale}: the header is marked fuzzy"
    headers = dict(catalog.mime_headers)
    assert headers["Language"] == locale
    assert "charset=utf-8" in headers["Content-Type"].lower()
    assert headers["Plural-Forms"].startswith("nplurals=")


def test_placeholders_are_kept(po):
    locale, catalog = po
    for m in messages(catalog).values():
        names = Counter(PLACEHOLDER_RE.findall(m.id))
        assert Counter(PLACEHOLDER_RE.findall(m.string)) == names, (locale, m.id, m.string)
        if names:  # the translation must also survive the %-formatting gettext_for applies
            m.string % {name: "x" for name in names}


@pytest.mark.parametrize("locale", LOCALES)
def test_office_hours_written_in_the_page_language_parse_back(locale):
    """The weekday abbreviations and "closed" are translated and also read back by the hours parser."""
    _ = gettext_for(locale)
    hours = OfficeHours.from_dict({"weekly": {"mon": [["08:00", "12:00"], ["14:00", "18:00"]],
                                              "thu": [["08:00", "12:00"]]}})
    text = forms.format_week(hours, _)
    assert forms.parse_week(text, _) == {"mon": [["08:00", "12:00"], ["14:00", "18:00"]], "tue": [], "wed": [],
                                         "thu": [["08:00", "12:00"]], "fri": [], "sat": [], "sun": []}


def test_german_weekday_abbreviations():
    _ = gettext_for("de")
    assert [_(d) for d in ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")] == ["Mo", "Di", "Mi", "Do", "Fr",
                                                                                    "Sa", "So"]


# -- rendered pages ---------------------------------------------------------------

async def get_text(central, path: str, **headers: str) -> str:
    async with central.session.get(central.url + path, headers=headers) as r:
        assert r.status == 200
        return html.unescape(await r.text())


@pytest.mark.parametrize("headers, lang, words, absent", [
    ({"Cookie": "ak_lang=de"}, "de", ["Anmelden", "Benutzername", "Passwort", "Anmeldung für Mitarbeitende"],
     ["Log in", "Username"]),
    ({"Cookie": "ak_lang=en"}, "en", ["Log in", "Username", "Password", "Log in to the staff console"],
     ["Anmelden", "Benutzername"]),
    ({"Accept-Language": "en-GB,en;q=0.8"}, "en", ["Log in", "Username"], ["Anmelden"]),
    ({"Accept-Language": "fr-FR,fr;q=0.8"}, "de", ["Anmelden", "Benutzername"], ["Log in"]),  # default: German
    ({"Cookie": "ak_lang=de", "Accept-Language": "en"}, "de", ["Anmelden"], ["Log in"]),  # the cookie wins
])
async def test_login_page_language(central, headers, lang, words, absent):
    text = await get_text(central, "/login", **headers)
    assert f'<html lang="{lang}">' in text
    for word in words:
        assert word in text
    for word in absent:
        assert word not in text


async def test_status_page_in_german(central):
    text = await get_text(central, "/status", Cookie="ak_lang=de")
    for word in ["Welche Ämter kann ich jetzt erreichen?", "Öffnungszeiten", "Erreichbarkeit", "Geöffnet",
                 "Im Warteraum: 0", "Montag", "Sonntag", "geschlossen", "Diese Seite wird alle 30 Sekunden"]:
        assert word in text
    for word in ["Office hours", "Monday", "Which offices"]:
        assert word not in text


async def test_status_page_in_english(central):
    text = await get_text(central, "/status", Cookie="ak_lang=en")
    for word in ["Which offices can I reach now?", "Office hours", "Office status", "Open", "Waiting: 0",
                 "Monday", "Sunday", "closed", "This page updates every 30 seconds."]:
        assert word in text
    for word in ["Öffnungszeiten", "Montag", "Geöffnet"]:
        assert word not in text


@pytest.mark.parametrize("lang, expected", [("de", {"Pick up": "Annehmen", "Hang up": "Auflegen",
                                                    "waiting for %(minutes)s min": "wartet seit %(minutes)s Min."}),
                                            ("en", {"Pick up": "Pick up", "Hang up": "Hang up"})])
async def test_console_strings_for_the_script(central, lang, expected):
    session = await central.login("sachbearbeiterin", central.credentials["clerk_password"])
    async with session.get(central.url + "/console", headers={"Cookie": f"ak_lang={lang}"}) as r:
        assert r.status == 200
        page = await r.text()
    strings = json.loads(STRINGS_RE.search(page)[1])
    for msgid, text in expected.items():
        assert strings[msgid] == text
    assert all(strings.values())
