"""The kiosk page's catalogues: every shipped language translates exactly the page's texts with the same
placeholders, German is the default and each language names itself; without German the page does not start."""
from __future__ import annotations

import re

import pytest

from appliance.kiosk import create_app
from appliance.kiosk.i18n import CatalogueError
from appliance.kiosk.update_translations import extract_sources
from tests.appliance.kiosk_page import CATALOGUES, LANGUAGES, FakeBridge, tr


def test_a_missing_german_catalogue_stops_start_up(tmp_path):
    with pytest.raises(CatalogueError, match="German"):
        create_app(FakeBridge(), locales_dir=tmp_path)


PLACEHOLDER = re.compile(r"%\((\w+)\)s")


@pytest.mark.parametrize("lang", LANGUAGES)
def test_catalogue_is_complete_and_matches_the_page(lang):
    used, messages = extract_sources(), CATALOGUES[lang].messages
    assert set(messages) == used, (f"{lang}: run python -m appliance.kiosk.update_translations and translate; "
                                   f"missing {sorted(used - set(messages))}, unused {sorted(set(messages) - used)}")
    for msgid, text in messages.items():
        assert sorted(PLACEHOLDER.findall(text)) == sorted(PLACEHOLDER.findall(msgid)), (lang, msgid)


def test_german_is_the_default_and_every_language_has_its_own_name():
    assert LANGUAGES[0] == "de" and set(LANGUAGES) >= {"de", "en", "tr", "ar", "uk", "ru"}
    assert [CATALOGUES[code].name for code in ("de", "en", "tr", "ar", "uk", "ru")] == [
        "Deutsch", "English", "Türkçe", "العربية", "Українська", "Русский"]
    assert tr("de", "Press the button") == "Drücken Sie den Knopf"
    assert tr("de", "Your conversation has ended.") + " " + tr("de", "Nothing was stored.") == \
        "Ihr Gespräch wurde beendet. Es wurde nichts gespeichert."
