"""The public pages of a visit from home: which offices can be visited, the per-office link, closed offices.

The demo offices: Bürgerbüro and Standesamt are always open; Ordnungsamt opens Monday 08:00-12:00 and
14:00-16:00 (and some other days); Bürgermeister only on Thursdays 16:00-18:00.
"""
from __future__ import annotations

import datetime as dt
import html
import re

from tests.central.test_citizen_pages import get

# Sunday 6 December 2026, 12:00 in Berlin: the Ordnungsamt is closed, it opens Monday at 08:00.
SUNDAY = dt.datetime(2026, 12, 6, 11, 0, tzinfo=dt.UTC)
# Monday 7 December 2026, 10:00 in Berlin: the Ordnungsamt is open.
MONDAY = dt.datetime(2026, 12, 7, 9, 0, tzinfo=dt.UTC)


def cards(text: str) -> dict[str, bool]:
    return {slug: state == "true" for slug, state in re.findall(r'data-department="([\w-]+)" data-open="(\w+)"', text)}


async def test_the_status_page_leads_to_the_visit_from_home(central):
    text, _ = await get(central, "/status", Cookie="ak_lang=de")
    assert re.search(r'<a class="button" href="/visit" data-testid="home-visit-link">[^<]*von zu Hause', text)


async def test_open_offices_can_be_chosen_closed_ones_show_hours_and_next_opening(central):
    central.clock.fixed = SUNDAY
    text, _ = await get(central, "/visit?lang=en")
    assert cards(text) == {"buergerbuero": True, "standesamt": True, "ordnungsamt": False, "buergermeister": False}
    assert 'href="/visit/buergerbuero"' in text and 'href="/visit/standesamt"' in text
    assert 'href="/visit/ordnungsamt"' not in text  # closed: nothing to start there now
    ordnungsamt = text[text.index('data-department="ordnungsamt"'):text.index('data-department="buergermeister"')]
    assert "Opens again: Monday, December 7, 2026" in ordnungsamt and "8:00" in ordnungsamt
    assert "Office hours" in ordnungsamt and "Monday" in ordnungsamt and "08:00–12:00, 14:00–16:00" in ordnungsamt
    central.clock.fixed = MONDAY
    text, _ = await get(central, "/visit?lang=en")
    assert cards(text)["ordnungsamt"] is True and 'href="/visit/ordnungsamt"' in text


async def test_the_link_of_one_office(central):
    central.clock.fixed = MONDAY
    text, _ = await get(central, "/visit/ordnungsamt?lang=de")
    assert 'data-testid="notice"' in text
    assert "Videogespräch" in text and "Es wird nichts aufgezeichnet und nichts gespeichert." in text
    central.clock.fixed = SUNDAY
    text, _ = await get(central, "/visit/ordnungsamt?lang=tr")
    assert 'data-testid="closed"' in text and 'data-testid="notice"' not in text
    assert "Bu daire şu anda kapalı." in text and "Pazartesi" in text


async def test_an_unknown_office_is_a_clear_404(central):
    async with central.session.get(central.url + "/visit/no-such-office?lang=en") as r:
        assert r.status == 404
        text = html.unescape(await r.text())
    assert "This link leads to no office." in text and 'href="/visit"' in text
