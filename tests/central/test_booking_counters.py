"""Bookings are deleted after their day; the anonymous counters (booked, cancelled, kept, missed) stay, in /metrics too."""
from __future__ import annotations

import datetime as dt

from central.bookings import forgetting
from central.bookings.slots import SlotSettings, forget_after, slots_of_day
from central.storage import schema as t
from tests.central.test_metrics import central, promtool, scrape  # noqa: F401 - the fixture
from tests.central.test_storage import count

YESTERDAY = dt.date.today() - dt.timedelta(days=1)
TOMORROW = dt.date.today() + dt.timedelta(days=1)
ALL_DAY = SlotSettings(slot_minutes=60, parallel=5)


async def test_bookings_of_past_days_are_deleted_and_only_counted(central):  # noqa: F811 - the fixture
    hours = central.hub.departments["buergerbuero"].hours  # the demo's: open all day, every day
    past, later = slots_of_day(hours, ALL_DAY, YESTERDAY)[10], slots_of_day(hours, ALL_DAY, TOMORROW)[9]
    came, stayed_away, cancelled = [await central.db.bookings.create("buergerbuero", past, 5,
                                                                     forget_after(hours, past)) for _ in range(3)]
    await central.db.bookings.check_in(came, past.start_ts)
    await central.db.bookings.cancel(cancelled)
    still = await central.db.bookings.create("buergerbuero", later, 5, forget_after(hours, later))

    # What central does in the background, at start and then every ten minutes: here one round, now.
    assert not central.app["forget_bookings"].done()
    assert await forgetting.forget_now(central.app) == 2
    assert await central.db.bookings.find(stayed_away) is None
    assert await central.db.bookings.find(came) is None
    assert await central.db.bookings.find(still) is not None  # kept until the end of its day
    assert await count(central.db, t.bookings) == 1

    status, _, text = await scrape(central)
    assert status == 200
    checked = promtool("check", "metrics", stdin=text)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    for outcome, n in (("booked", 4), ("cancelled", 1), ("kept", 1), ("missed", 1)):
        assert f'amtsklingel_bookings_total{{department="buergerbuero",outcome="{outcome}"}} {n}' in text


    admin = await central.login(central.credentials["admin_user"], central.credentials["admin_password"])
    async with admin.get(central.url + "/admin", headers={"Cookie": "ak_lang=en"}) as r:
        page = await r.text()
    stats = page.split('data-testid="booking-stats"')[1]
    assert (f'<td>{YESTERDAY.isoformat()}</td><td>Bürgerbüro</td>\n        <td class="num">3</td><td class="num">1</td>'
            f'<td class="num">1</td>\n        <td class="num">1</td>') in stats
