"""The citizen pages' six languages: the catalogue matches the sources and is complete, each page comes in
the language chosen (or remembered, or the browser's) with its writing direction and a language chooser."""
from __future__ import annotations

import html
import json
import re
from collections import Counter

import pytest
from babel.messages.pofile import read_po

from central.citizen.i18n import CATALOGUE_DIR, languages
from central.citizen.update_translations import extract_sources
from protocol.languages import CITIZEN_LANGUAGES

PLACEHOLDER_RE = re.compile(r"%\((\w+)\)[sd]")
STRINGS_RE = re.compile(r'<script type="application/json" id="citizen-strings">(.*?)</script>', re.S)


def catalogue(code: str):
    with (CATALOGUE_DIR / code / "LC_MESSAGES" / "messages.po").open("rb") as f:
        return read_po(f, locale=code)


@pytest.fixture(scope="module")
def extracted() -> set[str]:
    return extract_sources()


@pytest.mark.parametrize("code", CITIZEN_LANGUAGES)
def test_catalogue_matches_the_sources_and_is_complete(code, extracted):
    cat = catalogue(code)
    ids = {m.id for m in cat if m.id}
    assert ids == extracted, ("out of date; run python -m central.citizen.update_translations and translate:\n"
                              f"missing {sorted(extracted - ids)}\nstale {sorted(ids - extracted)}")
    untranslated = [m.id for m in cat if m.id and not str(m.string).strip()]
    fuzzy = [m.id for m in cat if m.id and m.fuzzy]
    assert not untranslated and not fuzzy, (code, untranslated, fuzzy)
    for m in cat:
        if m.id:
            assert Counter(PLACEHOLDER_RE.findall(m.string)) == Counter(PLACEHOLDER_RE.findall(m.id)), (code, m.id)
    assert dict(cat.mime_headers)["Language"] == code


def test_languages_have_their_own_names_and_arabic_is_right_to_left():
    found = languages()
    assert list(found) == list(CITIZEN_LANGUAGES)
    assert {c: found[c].direction for c in found} == {"de": "ltr", "en": "ltr", "tr": "ltr", "ar": "rtl",
                                                      "uk": "ltr", "ru": "ltr"}
    assert found["ar"].name == "العربية" and found["uk"].name == "Українська"


async def get(central, path: str, **headers: str) -> tuple[str, dict]:
    async with central.session.get(central.url + path, headers=headers) as r:
        assert r.status == 200, await r.text()
        return html.unescape(await r.text()), dict(r.headers) | {"cookies": {k: v.value for k, v in r.cookies.items()}}


@pytest.mark.parametrize("query, headers, lang", [
    ("?lang=tr", {}, "tr"),                                                # chosen now
    ("", {"Cookie": "ak_citizen_lang=uk"}, "uk"),                          # chosen before
    ("", {"Accept-Language": "ru-RU,ru;q=0.9,en;q=0.5"}, "ru"),            # the browser's
    ("", {"Accept-Language": "fr-FR,fr;q=0.9"}, "de"),                     # none of those: German
    ("?lang=fr", {"Cookie": "ak_citizen_lang=ar"}, "ar"),                  # no such citizen language: ignored
    ("?lang=en", {"Cookie": "ak_citizen_lang=ar", "Accept-Language": "tr"}, "en"),  # the choice wins
])
async def test_page_language(central, query, headers, lang):
    text, _ = await get(central, "/visit" + query, **headers)
    direction = "rtl" if lang == "ar" else "ltr"
    assert f'<html lang="{lang}" dir="{direction}">' in text
    assert languages()[lang].gettext("Choose an office") in text
    strings = json.loads(STRINGS_RE.search(text)[1])  # the page scripts' catalogue, in the same language
    assert strings == languages()[lang].messages


async def test_arabic_page_is_right_to_left_and_in_arabic(central):
    text, _ = await get(central, "/visit?lang=ar")
    assert '<html lang="ar" dir="rtl">' in text
    assert "اختر دائرة" in text and "Wählen Sie" not in text


@pytest.mark.parametrize("lang", ["de", "ar"])
async def test_every_citizen_page_leads_to_the_booking_page(central, lang):
    text, _ = await get(central, f"/visit?lang={lang}")
    foot = re.search(r'<footer class="citizen-foot">.*?</footer>', text, re.S)[0]
    assert f'<a href="/booking" data-testid="booking-link-foot">{languages()[lang].gettext("Book an appointment")}</a>' in foot
    booking, _ = await get(central, f"/booking?lang={lang}")
    assert languages()[lang].gettext("Book an appointment") in booking


async def test_a_chosen_language_is_remembered_for_the_next_page(central):
    _, headers = await get(central, "/visit?lang=ar")
    assert headers["cookies"]["ak_citizen_lang"] == "ar"
    text, headers = await get(central, "/visit/buergerbuero", Cookie="ak_citizen_lang=ar")
    assert '<html lang="ar" dir="rtl">' in text and "ak_citizen_lang" not in headers["cookies"]


async def test_language_chooser_names_each_language_in_itself_and_keeps_the_other_parameters(central):
    text, _ = await get(central, "/visit/buergerbuero?booking=7K3M9QX2&lang=de")
    chooser = re.search(r'<nav class="languages".*?</nav>', text, re.S)[0]
    links = re.findall(r'<a href="([^"]+)" lang="(\w+)" hreflang="\w+" dir="(\w+)"( aria-current="true")?>([^<]+)</a>',
                       chooser)
    assert [(lang, name) for _, lang, _, _, name in links] == [
        ("de", "Deutsch"), ("en", "English"), ("tr", "Türkçe"), ("ar", "العربية"), ("uk", "Українська"),
        ("ru", "Русский")]
    assert [lang for _, lang, _, current, _ in links if current] == ["de"]
    assert [d for _, lang, d, _, _ in links if d == "rtl"] == ["rtl"]
    for href, lang, *_ in links:
        assert href == f"/visit/buergerbuero?booking=7K3M9QX2&lang={lang}"
