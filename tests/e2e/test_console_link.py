"""The console's side of the link to central, in real Chromium against a scripted central (tests/e2e/fake_central):
a live call survives central going away (close 1012) and is kept when central confirms it; a call whose media
fails closes with a plain message; the console gives up on media that never connects and says so to central;
a reloaded console asks for a fresh offer; a burst of arrivals chimes once per department, a visit that
leaves within seconds not at all; an ended session
goes to the login page instead of reconnecting in a loop."""
from __future__ import annotations

import re

import pytest

from appliance.call.peer import CallPeer
from appliance.hardware.fake.camera import TestPatternTrack
from appliance.sim.kiosk import SimulatedKiosk
from protocol import messages as m
from tests.browser import poll
from tests.e2e.clerk_steps import CONNECTED, login, on_duty
from tests.e2e.fake_central import VISIT, FakeCentral, RelayedKiosk, console_errors, snapshot, waiting_visit
from tests.e2e.test_clerk_call import INBOUND_STATS_JS

LOST = "Connection to central lost — reconnecting; your call continues."
FAILED = ("The video connection to Rathaus Musterdorf could not be set up (network). "
          "The citizen is back at the head of the queue.")


@pytest.fixture
async def console(central, browser):
    """A logged-in console page (English) whose /ws/staff is the fake central."""
    context = await browser.new_context(permissions=["camera", "microphone"], locale="en-GB",
                                        extra_http_headers={"Accept-Language": "en"})
    page = await context.new_page()
    errors = console_errors(page)
    fake = FakeCentral()
    await fake.attach(page)
    page.fake = fake
    yield page
    await context.close()
    assert fake.invalid == [], "the console sent frames protocol/ refuses"
    assert errors == [], errors


async def open_console(page, central, connect_timeout_s: int | None = None) -> None:
    if connect_timeout_s is None:
        await on_duty(page, central)
        return
    await login(page, central)

    async def shorter(route):  # the page as central renders it, with a shorter bound for the call
        response = await route.fetch()
        body = (await response.text()).replace('data-connect-timeout-s="35"',
                                               f'data-connect-timeout-s="{connect_timeout_s}"')
        assert f'data-connect-timeout-s="{connect_timeout_s}"' in body
        await route.fulfill(response=response, body=body)
    await page.route("**/console", shorter)  # not applied to the redirect after logging in: load again
    await page.goto(central.url + "/console")
    await page.locator(CONNECTED).wait_for()


async def test_live_call_survives_central_restart_and_is_kept(console, central):
    page, fake = console, console.fake
    await open_console(page, central)
    kiosk = RelayedKiosk(fake)
    try:
        await kiosk.call()
        await poll(lambda: page.evaluate(INBOUND_STATS_JS), lambda s: s and s["video"]
                   and s["video"]["framesDecoded"] > 10)
        assert (await fake.next("rtc.state")).state == "connected"
        await page.evaluate("window.amtsklingel.pc.keptAcrossRestart = true")

        # Central restarts: every socket closed with 1012. The call goes on, and the clerk is told so.
        fake.greet = False
        await fake.sockets[-1].close(code=1012, reason="restart")
        banner = page.locator("[data-testid=call-link-lost]")
        await banner.wait_for()
        assert await banner.inner_text() == LOST
        assert await page.locator("[data-testid=call-view]").is_visible()

        # The console comes back by itself; central (restarted, the kiosk resumed) confirms the call.
        await poll(lambda: _async(len(fake.sockets)), lambda n: n == 2)
        before = (await page.evaluate(INBOUND_STATS_JS))["video"]["framesDecoded"]
        fake.send(snapshot("in_call"))
        fake.send(m.CallAssigned(type="call.assigned", visit=VISIT, ice_servers=[], resumed=True))
        await banner.wait_for(state="hidden")
        assert await page.evaluate("window.amtsklingel.pc.keptAcrossRestart") is True
        assert await page.evaluate("window.amtsklingel.pc.connectionState") == "connected"
        await poll(lambda: page.evaluate(INBOUND_STATS_JS), lambda s: s["video"]["framesDecoded"] > before + 10)
        assert fake.sent_by_console("call.restart") == []
        assert fake.sent_by_console("visit.hangup") == []
    finally:
        await kiosk.close()


async def _async(value):
    return value


async def test_failed_call_closes_and_says_why(console, central):
    page, fake = console, console.fake
    await open_console(page, central)
    fake.send(m.CallAssigned(type="call.assigned", visit=VISIT, ice_servers=[]))
    await page.locator("[data-testid=call-view]").wait_for()
    fake.send(m.CallFailed(type="call.failed", visit_id=VISIT.visit_id, reason="media_timeout"))
    await page.locator("[data-testid=call-view]").wait_for(state="hidden")
    assert await page.locator("#call-notice").inner_text() == FAILED
    assert await page.evaluate("window.amtsklingel.pc") is None


async def test_signalling_that_crossed_the_end_of_its_call_is_not_shown_as_an_error(console, central):
    page, fake = console, console.fake
    await open_console(page, central)
    fake.send(m.CallAssigned(type="call.assigned", visit=VISIT, ice_servers=[]))
    await page.locator("[data-testid=call-view]").wait_for()
    fake.send(m.CallFailed(type="call.failed", visit_id=VISIT.visit_id, reason="ice_failed"))
    # The console's own rtc.state failed crossed central's call.failed.
    fake.send(m.Error(type="error", code="not_your_visit", detail="you are not in a call with this visit",
                      ref="rtc.state"))
    arrival = waiting_visit(1)
    fake.send(m.QueueJoined(type="queue.joined", visit=arrival))  # handled after the error: a marker
    await page.locator(f"[data-visit-id='{arrival.visit_id}']").wait_for()
    assert await page.locator("#banner").is_hidden()


async def test_console_gives_up_on_media_that_never_connects(console, central):
    page, fake = console, console.fake
    await open_console(page, central, connect_timeout_s=2)
    fake.send(m.CallAssigned(type="call.assigned", visit=VISIT, ice_servers=[]))
    await page.locator("[data-testid=call-view]").wait_for()
    # The bound starts with the kiosk's offer (a kiosk offline at the pick-up offers only when it is back).
    await page.wait_for_timeout(3000)
    assert fake.sent_by_console("rtc.state") == []
    # A kiosk offers but never gets the answer: its ICE never starts, so the media cannot connect.
    kiosk = CallPeer([], [TestPatternTrack(320, 240)])
    try:
        fake.send(m.RtcOffer(type="rtc.offer", visit_id=VISIT.visit_id, sdp=await kiosk.offer()))
        state = await fake.next("rtc.state")
        assert (state.visit_id, state.state) == (VISIT.visit_id, "failed")
        assert await page.locator("#call-state").inner_text() == "The connection to the citizen failed."
    finally:
        await kiosk.close()


async def test_reloaded_console_asks_for_a_fresh_offer(console, central):
    page, fake = console, console.fake
    fake.presence = "in_call"
    await open_console(page, central)
    fake.send(m.CallAssigned(type="call.assigned", visit=VISIT, ice_servers=[], resumed=True))
    restart = await fake.next("call.restart")
    assert restart.visit_id == VISIT.visit_id
    await page.locator("[data-testid=call-view]").wait_for()


async def test_a_burst_of_arrivals_chimes_once_per_department(console, central):
    page, fake = console, console.fake
    await page.clock.install()
    await open_console(page, central)
    await page.clock.set_fixed_time(1_800_000_000_000)  # Date.now() stands still: the whole burst is "at once"
    for n in range(30):
        fake.send(m.QueueJoined(type="queue.joined", visit=waiting_visit(n, "buergerbuero")))
        fake.send(m.QueueJoined(type="queue.joined", visit=waiting_visit(100 + n, "standesamt")))
    await poll(lambda: page.evaluate("window.amtsklingel.alerts.length"), lambda n: n == 60)
    await page.clock.run_for(3000)  # the chime waits whether the visit stays (see the next test)
    chimes = await page.evaluate("window.amtsklingel.chimes.map(c => c.department)")
    assert sorted(chimes) == ["buergerbuero", "standesamt"]
    assert await page.locator("[data-testid=queue-count]").inner_text() == "60"

    await page.clock.set_fixed_time(1_800_000_006_000)  # a new arrival a few seconds later chimes again
    fake.send(m.QueueJoined(type="queue.joined", visit=waiting_visit(200, "buergerbuero")))
    await poll(lambda: page.evaluate("window.amtsklingel.alerts.length"), lambda n: n == 61)
    await page.clock.run_for(3000)
    await poll(lambda: page.evaluate("window.amtsklingel.chimes.length"), lambda n: n == 3)

    # Visits put back in their places after central restarted are no arrivals.
    await page.clock.set_fixed_time(1_800_000_012_000)
    fake.send(m.QueueJoined(type="queue.joined", visit=waiting_visit(300, "standesamt"), reason="restored"))
    await page.locator(f"[data-visit-id='{waiting_visit(300).visit_id}']").wait_for()
    assert await page.evaluate("window.amtsklingel.alerts.length") == 61


async def test_a_visit_that_leaves_within_seconds_does_not_chime(console, central):
    """A mistaken press, or a kiosk flooding request and cancel: queue.joined and queue.left within seconds."""
    page, fake = console, console.fake
    await page.clock.install()
    await open_console(page, central)
    await page.clock.set_fixed_time(1_800_000_000_000)
    for n in range(5):
        fake.send(m.QueueJoined(type="queue.joined", visit=waiting_visit(n, "buergerbuero")))
        fake.send(m.QueueLeft(type="queue.left", visit_id=waiting_visit(n, "buergerbuero").visit_id,
                              department="buergerbuero", reason="cancelled"))
    await poll(lambda: page.evaluate("window.amtsklingel.alerts.length"), lambda n: n == 5)
    await poll(lambda: page.locator("[data-testid=queue-count]").inner_text(), lambda text: text == "0")
    await page.clock.run_for(10_000)
    assert await page.evaluate("window.amtsklingel.chimes.length") == 0

    # A citizen who stays is announced once the few seconds have passed.
    fake.send(m.QueueJoined(type="queue.joined", visit=waiting_visit(9, "buergerbuero")))
    await poll(lambda: page.evaluate("window.amtsklingel.alerts.length"), lambda n: n == 6)
    await page.clock.run_for(3500)
    await poll(lambda: page.evaluate("window.amtsklingel.chimes.map(c => c.department)"),
               lambda chimes: chimes == ["buergerbuero"])


async def test_ended_session_goes_to_login_without_reconnecting(console, central):
    page, fake = console, console.fake
    await open_console(page, central)
    fake.send(m.Error(type="error", code="session_ended", detail="logged out"))
    await fake.sockets[-1].close(code=1008)
    await page.locator("#banner-text", has_text="Your session has ended. Please log in again.").wait_for()
    await page.wait_for_url("**/login?next=/console")
    assert len(fake.sockets) == 1


async def test_replaced_console_stops_reconnecting(console, central):
    page, fake = console, console.fake
    await open_console(page, central)
    fake.send(m.Error(type="error", code="replaced", detail="opened elsewhere"))
    await fake.sockets[-1].close(code=1000)
    state = page.locator("[data-testid=connection-state][data-state=replaced]")
    await state.wait_for()
    assert await state.inner_text() == "The console was opened in another window."
    await page.wait_for_timeout(3000)  # longer than the first reconnect delay (at most 1.2 s)
    assert len(fake.sockets) == 1


async def test_console_reconnecting_to_the_real_central_keeps_its_call(central, browser):
    """The same against central itself: the console's socket is cut mid-call (Playwright relays it to central
    and closes both ends with 1012); central gives the returning console call.assigned {resumed: true}, the
    console keeps its peer connection, and the kiosk is not asked to negotiate again."""
    central.hub.resume_grace_s = 30.0  # the test central's 1 s is shorter than the console's first back-off
    context = await browser.new_context(permissions=["camera", "microphone"])
    page = await context.new_page()
    errors = console_errors(page)
    relays: list = []
    sent: list[str] = []

    def relay(ws) -> None:
        server = ws.connect_to_server()
        relays.append((ws, server))
        ws.on_message(lambda frame: (sent.append(frame), server.send(frame)))

    await page.route_web_socket("**/ws/staff", relay)
    kiosk = SimulatedKiosk(central.url, central.credentials["kiosk_token"])
    await kiosk.start()
    try:
        await open_console(page, central)
        await kiosk.request("buergerbuero", language="en")
        queued = await kiosk.next_event("visit.queued")
        row = page.locator(f"[data-testid=visit-row][data-visit-id='{queued.visit_id}']")
        await row.locator("[data-testid=pickup-button]").click()
        await kiosk.next_event("call.start")
        await poll(lambda: page.evaluate(INBOUND_STATS_JS), lambda s: s and s["video"]
                   and s["video"]["framesDecoded"] > 10)
        await page.evaluate("window.amtsklingel.pc.keptAcrossRestart = true")

        page_side, central_side = relays[-1]
        await page_side.close(code=1012, reason="restart")
        await central_side.close(code=1012, reason="restart")
        await page.locator("[data-testid=call-link-lost]").wait_for()
        await page.locator("[data-testid=call-link-lost]").wait_for(state="hidden")  # back, call confirmed
        assert len(relays) == 2
        assert await page.evaluate("window.amtsklingel.pc.keptAcrossRestart") is True
        before = (await page.evaluate(INBOUND_STATS_JS))["video"]["framesDecoded"]
        await poll(lambda: page.evaluate(INBOUND_STATS_JS), lambda s: s["video"]["framesDecoded"] > before + 10)
        assert not [f for f in sent if '"call.restart"' in f]
        later = [kiosk.events.get_nowait().type for _ in range(kiosk.events.qsize())]
        assert "call.start" not in later, later

        await page.click("[data-testid=hangup-button]")
        assert (await kiosk.next_event("visit.ended")).reason == "hangup_staff"
    finally:
        await kiosk.stop()
        await context.close()
    assert errors == [], errors


async def test_real_central_gives_up_on_a_call_and_the_console_says_why(central, browser):
    """Central's media timer runs out (the kiosk never offers): the console closes the call, says so in plain
    words, and the citizen is back at the head of its waiting room."""
    central.hub.call_connect_timeout_s = 1.0
    context = await browser.new_context(permissions=["camera", "microphone"], locale="en-GB",
                                        extra_http_headers={"Accept-Language": "en"})
    page = await context.new_page()
    errors = console_errors(page)
    kiosk = await central.kiosk()
    try:
        await open_console(page, central)
        await kiosk.send(type="visit.request", department="buergerbuero", language="de")
        visit_id = (await kiosk.recv("visit.queued"))["visit_id"]
        await page.locator(f"[data-visit-id='{visit_id}'] [data-testid=pickup-button]").click()
        await kiosk.recv("call.start")  # and the kiosk's media never comes
        failed = await kiosk.recv("call.failed")
        assert (failed["reason"], failed["position"]) == ("media_timeout", 1)
        await page.locator("[data-testid=call-view]").wait_for(state="hidden")
        assert await page.locator("#call-notice").inner_text() == FAILED.replace("Musterdorf", "Musterdorf, Foyer")
        await page.locator(f"[data-visit-id='{visit_id}']").wait_for()  # waiting again, pick-up possible
        assert await page.locator(f"[data-visit-id='{visit_id}'] [data-testid=pickup-button]").is_enabled()
    finally:
        await kiosk.ws.close()
        await context.close()
    assert errors == [], errors


async def test_logging_out_elsewhere_sends_the_open_console_to_the_login_page(central, browser):
    """Logging out ends every session of the clerk: central closes the open console with session_ended,
    and the console goes to the login page instead of knocking again and again."""
    context = await browser.new_context(locale="en-GB", extra_http_headers={"Accept-Language": "en"})
    page = await context.new_page()
    errors = console_errors(page)
    handshakes: list[str] = []
    page.on("websocket", lambda ws: handshakes.append(ws.url))
    try:
        await open_console(page, central)
        elsewhere = await central.login(central.credentials["clerk_user"], central.credentials["clerk_password"])
        async with elsewhere.get(central.url + "/console") as r:
            csrf = re.search(r'name="csrf_token" value="([^"]+)"', await r.text())[1]
        async with elsewhere.post(central.url + "/logout", data={"csrf_token": csrf}, allow_redirects=False) as r:
            assert r.status == 302
        await page.locator("#banner-text", has_text="Your session has ended. Please log in again.").wait_for()
        await page.wait_for_url("**/login?next=/console")
        assert len(handshakes) == 1
    finally:
        await context.close()
    assert errors == [], errors
