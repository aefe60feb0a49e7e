"""The public booking pages through real HTTP: office -> day -> time -> code, link, QR code, calendar file,
cancelling, joining at the time; bad input, foreign forms and the per-address limits."""
from __future__ import annotations

import datetime as dt
import html
import re

import aiohttp

from central.bookings.slots import SlotSettings
from central.storage import schema as t
from tests.central.test_storage import count

MONDAY_8 = dt.datetime(2026, 12, 7, 7, 0, tzinfo=dt.UTC)  # 08:00 in Berlin; the demo's Ordnungsamt opens then
CODE_RE = re.compile(r'data-testid="booking-code">([0-9A-Z]{4}-[0-9A-Z]{4})<')


async def get(central, path: str, **kw) -> tuple[int, str, aiohttp.ClientResponse]:
    async with central.session.get(central.url + path, allow_redirects=False, **kw) as r:
        return r.status, html.unescape(await r.text()), r


FORM_TOKEN = "a-browsers-form-token-0123456789"


async def post(central, path: str, data: dict, *, token: str | None = FORM_TOKEN, cookie: str | None = None,
               **kw) -> tuple[int, str, aiohttp.ClientResponse]:
    """POST a booking form as our page sends it: its token in the form and in the cookie the page set."""
    cookie = token if cookie is None else cookie
    headers = kw.pop("headers", {}) | ({"Cookie": f"ak_booking_form={cookie}"} if cookie else {})
    form = data | ({"form_token": token} if token else {})
    async with central.session.post(central.url + path, data=form, allow_redirects=False, headers=headers,
                                    **kw) as r:
        return r.status, html.unescape(await r.text()), r


async def open_booking(central, **settings) -> None:
    central.clock.fixed = MONDAY_8
    await central.db.bookings.save_settings("ordnungsamt", SlotSettings(**({"slot_minutes": 30} | settings)))


async def book(central, start: str = "2026-12-07T10:00") -> str:
    status, _, r = await post(central, "/booking/office/ordnungsamt", {"start": start})
    assert status == 303, r.headers
    code = r.headers["Location"].split("/")[2].split("?")[0]
    return code


async def test_a_citizen_books_gets_code_link_qr_and_calendar_then_cancels(central):
    await open_booking(central)
    status, text, _ = await get(central, "/booking?lang=en")
    assert status == 200 and "Ordnungsamt" in text and 'href="/booking/office/ordnungsamt"' in text
    assert "/booking/office/buergerbuero" not in text  # takes no appointments

    status, text, _ = await get(central, "/booking/office/ordnungsamt?lang=en")
    assert status == 200 and "Monday, December 7, 2026" in text and "Tuesday, December 8, 2026" in text
    assert 'value="2026-12-07T08:30"' in text and 'value="2026-12-07T08:00"' not in text  # 08:00 has begun
    status, text, _ = await get(central, "/booking/office/ordnungsamt?day=2026-12-08&lang=en")
    assert 'value="2026-12-08T08:00"' in text and "Free times on Tuesday, December 8, 2026" in text

    status, _, r = await post(central, "/booking/office/ordnungsamt", {"start": "2026-12-07T10:00"})
    assert status == 303 and re.fullmatch(r"/booking/[0-9A-Z]{8}\?done=new", r.headers["Location"])
    code = r.headers["Location"].split("/")[2].split("?")[0]
    status, text, _ = await get(central, r.headers["Location"] + "&lang=en")
    assert status == 200 and CODE_RE.search(text)[1] == f"{code[:4]}-{code[4:]}"
    assert f"{central.url}/booking/{code}" in text and '<svg role="img"' in text
    assert "Monday, December 7, 2026" in text and "10:00" in text
    assert 'data-phase="early"' in text and 'data-testid="join"' not in text
    status, text, _ = await get(central, "/booking/office/ordnungsamt?lang=en")
    assert 'value="2026-12-07T10:00"' not in text  # one per slot: taken

    # The calendar file: the appointment in Berlin time, with Berlin's rules.
    status, ics, r = await get(central, f"/booking/{code}/calendar.ics")
    assert status == 200 and r.headers["Content-Type"].startswith("text/calendar")
    assert "DTSTART;TZID=Europe/Berlin:20261207T100000\r\n" in ics and "TZID:Europe/Berlin\r\n" in ics

    # Typed in lower case with its dash: the same booking.
    status, _, r = await get(central, f"/booking/{code[:4].lower()}-{code[4:].lower()}")
    assert status == 301 and r.headers["Location"] == f"/booking/{code}"

    status, text, _ = await post(central, f"/booking/{code}/cancel", {})
    assert status == 200 and "is cancelled" in text
    assert (await get(central, f"/booking/{code}"))[0] == 404
    assert await count(central.db, t.bookings) == 0


async def test_at_the_time_the_page_leads_into_the_visit(central):
    await open_booking(central)
    code = await book(central, "2026-12-07T09:00")
    central.clock.fixed = MONDAY_8 + dt.timedelta(minutes=55)  # 08:55: five minutes into the window
    status, text, _ = await get(central, f"/booking/{code}?lang=en")
    assert 'data-phase="now"' in text and f'href="/visit/ordnungsamt?booking={code}"' in text
    await central.db.bookings.check_in(code, MONDAY_8.timestamp())
    status, text, _ = await get(central, f"/booking/{code}?lang=en")
    assert 'data-phase="used"' in text and "cancel" not in text.split('data-testid="booking"')[1].split("</main>")[0]
    assert (await post(central, f"/booking/{code}/cancel", {}))[0] == 409


async def test_bad_booking_input_is_refused_with_a_clear_word(central):
    await open_booking(central, days_ahead=7)
    cases = [("2026-12-07T10:10", 400, "No appointment begins at this time"),
             ("2026-12-07T08:00", 400, "This time has already passed"),
             ("2026-12-09T10:00", 400, "The office is closed on this day"),
             ("2026-12-21T10:00", 400, "This day is too far ahead"),
             ("2026-11-30T10:00", 400, "This time has already passed"),
             ("tomorrow at ten", 400, "Please choose a time"),
             ("", 400, "Please choose a time")]
    for start, status, words in cases:
        got, text, _ = await post(central, "/booking/office/ordnungsamt?lang=en", {"start": start})
        assert (got, words in text) == (status, True), (start, got, text[:2000])
    for day, words in (("2026-13-01", "Please choose a time"), ("2026-12-09", "closed on this day"),
                       ("2027-12-07", "too far ahead")):
        got, text, _ = await get(central, f"/booking/office/ordnungsamt?day={day}&lang=en")
        assert got == 400 and words in text, day
    assert (await get(central, "/booking/office/buergerbuero?lang=en"))[0] == 404  # takes no appointments
    assert (await get(central, "/booking/office/no-such-office"))[0] == 404
    got, text, _ = await get(central, "/booking/find?code=hello&lang=en")
    assert got == 400 and "This is not a booking code" in text
    assert await count(central.db, t.bookings) == 0


async def test_the_last_seat_goes_once_and_the_second_citizen_is_told(central):
    await open_booking(central, parallel=1)
    await book(central)
    got, text, _ = await post(central, "/booking/office/ordnungsamt?lang=en", {"start": "2026-12-07T10:00"})
    assert got == 409 and "Someone else has just booked this time" in text


async def test_a_form_of_another_site_cannot_book_or_cancel(central):
    await open_booking(central)
    status, text, r = await get(central, "/booking/office/ordnungsamt?lang=en")
    token = re.search(r'name="form_token" value="([^"]+)"', text)[1]
    [cookie] = [c for c in r.headers.getall("Set-Cookie") if c.startswith("ak_booking_form=")]
    assert cookie.startswith(f"ak_booking_form={token};") and "SameSite=Lax" in cookie and "HttpOnly" in cookie
    # Another site can send neither this browser's cookie nor its token: without both, or with another, 403.
    for token, cookie in ((None, FORM_TOKEN), ("forged-token-of-another-site-01", FORM_TOKEN), (FORM_TOKEN, "")):
        got, text, _ = await post(central, "/booking/office/ordnungsamt?lang=en", {"start": "2026-12-07T10:00"},
                                  token=token, cookie=cookie)
        assert got == 403 and "The form has expired" in text, (token, cookie)
    code = await book(central)
    assert (await post(central, f"/booking/{code}/cancel", {}, token=None, cookie=FORM_TOKEN))[0] == 403
    assert await central.db.bookings.find(code) is not None
    assert await count(central.db, t.bookings) == 1


async def test_per_address_limits_on_booking_and_on_unknown_codes(central):
    await open_booking(central, parallel=20)
    codes = [await book(central) for _ in range(5)]
    got, text, r = await post(central, "/booking/office/ordnungsamt?lang=en", {"start": "2026-12-07T10:00"})
    assert got == 429 and int(r.headers["Retry-After"]) > 0 and "Too many attempts" in text
    assert await count(central.db, t.bookings) == 5

    for i in range(10):  # guessing: ten misses, then no more answers for a while
        assert (await get(central, f"/booking/{i:08d}"))[0] == 404
    got, _, r = await get(central, "/booking/ZZZZZZZZ")
    assert got == 429 and int(r.headers["Retry-After"]) >= 1
    assert (await get(central, "/booking/find?code=hello"))[0] == 429
    # The holder of a real code is not locked out by that.
    assert (await get(central, f"/booking/{codes[0]}"))[0] == 200
