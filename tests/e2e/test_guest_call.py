"""An interpreter joins a call by the clerk's link, in real Chromium pages: the clerk's console, the guest's
page and a scripted aiortc kiosk (or a visitor's browser at home) as the citizen. Each of the three receives
picture and sound from the others; the interpreter's socket is dropped (as when central's leader changes) and
their page comes back into the call by itself; the clerk removes the interpreter and the call goes on."""
from __future__ import annotations

import asyncio

from tests.browser import poll
from tests.e2e.clerk_steps import on_duty
from tests.e2e.guest_citizen import KioskWithGuests
from tests.e2e.test_home_visit import HOME_PC, clerk_console, home_page_waiting, stats

# Frames decoded and audio energy received from one participant, on the guest's page or the console.
PAIR_STATS_JS = """async ([where, peer]) => {
  const pairs = where === 'guest' ? window.amtsklingel.state.pairs : window.amtsklingel.guests;
  const pair = pairs && pairs.pairs.get(peer);
  if (!pair || pair.pc.replaced) return null;
  const out = {video: 0, energy: 0, state: pair.pc.connectionState};
  (await pair.pc.getStats()).forEach(r => {
    if (r.type === 'inbound-rtp' && r.kind === 'video') out.video = r.framesDecoded || 0;
    if (r.type === 'inbound-rtp' && r.kind === 'audio') out.energy = r.totalAudioEnergy || 0;
  });
  return out;
}"""
CITIZEN_STATS_JS = """async () => {
  const pc = window.amtsklingel.pc;
  if (!pc) return null;
  let frames = 0;
  (await pc.getStats()).forEach(r => { if (r.type === 'inbound-rtp' && r.kind === 'video') frames = r.framesDecoded; });
  return frames;
}"""


# Marks the current connections of a page (the guest's or the console's pairs, or the home page's): a pair
# started afresh is a new connection, without the mark, and the probes above see only such a one.
MARK_PAIRS_JS = """() => {
  const home = window.amtsklingelHome;
  const pairs = home ? home.pcs : (window.amtsklingel.state?.pairs || window.amtsklingel.guests).pairs;
  pairs.forEach((pair) => { pair.pc.replaced = true; });
}"""
# Every text the guest page's status line shows from now on.
SEEN_STATUS_JS = """() => {
  window.seenStatus = [];
  const status = document.querySelector('#status');
  new MutationObserver(() => window.seenStatus.push(status.textContent))
    .observe(status, {childList: true, characterData: true, subtree: true});
}"""
# What the status line says while reconnecting, in the page's language (its catalogue, else the English msgid).
RECONNECTING_JS = """() => {
  const msgid = 'Connection lost. Reconnecting…';
  return JSON.parse(document.getElementById('citizen-strings')?.textContent || '{}')[msgid] || msgid;
}"""


def _gets_media(stats) -> bool:
    return bool(stats) and stats["video"] > 15 and stats["energy"] > 0


async def _moving(page, where: str, peer: str) -> None:
    """Frames from ``peer`` keep arriving (the picture moves on), with sound."""
    first = await poll(lambda: page.evaluate(PAIR_STATS_JS, [where, peer]), _gets_media, seconds=45)
    await poll(lambda: page.evaluate(PAIR_STATS_JS, [where, peer]),
               lambda s: s and s["video"] > first["video"] + 10 and s["energy"] > first["energy"])


async def test_an_interpreter_joins_by_link_sees_and_hears_both_others_and_is_removed(central, browser):
    central.hub.call_connect_timeout_s = 60
    central.hub.resume_grace_s = 60  # the fixture's 1 s is shorter than the pages' first wait before reconnecting
    errors: list[str] = []
    contexts = [await browser.new_context(permissions=["camera", "microphone"]) for _ in range(2)]
    clerk, guest = [await context.new_page() for context in contexts]
    for page in (clerk, guest):
        # (the browser's own request for /favicon.ico, which central does not serve, is no error of the page)
        page.on("console", lambda msg: msg.type == "error" and "favicon" not in msg.location.get("url", "")
                and errors.append(f"{msg.text} {msg.location}"))
        page.on("pageerror", lambda exc: errors.append(str(exc)))
    kiosk = KioskWithGuests(central.url, central.credentials["kiosk_token"], width=320, height=240)
    try:
        await on_duty(clerk, central)
        await kiosk.start()
        await kiosk.request("buergerbuero", language="tr")
        queued = await kiosk.next_event("visit.queued")
        await clerk.locator(f"[data-testid=visit-row][data-visit-id='{queued.visit_id}'] "
                            "[data-testid=pickup-button]").click()
        await clerk.locator("[data-testid=call-view]").wait_for()

        # The clerk invites an interpreter and hands over the link.
        await clerk.fill("[data-testid=guest-label]", "Dolmetscherin Türkisch")
        await clerk.click("[data-testid=guest-invite]")
        link_field = clerk.locator("[data-testid=guest-link]")
        await link_field.wait_for()
        link = await link_field.input_value()
        assert link.startswith(central.url + "/guest#") and len(link.split("#")[1]) >= 22

        # The interpreter opens it, checks camera and microphone, and waits.
        await guest.goto(link)
        await guest.click("[data-testid=guest-start]")
        await guest.locator("[data-testid=guest-check]").wait_for()
        assert "#" not in guest.url  # the secret is out of the address bar once used
        await poll(lambda: guest.evaluate("document.querySelector('#level').value"), lambda v: v > 0)
        await guest.locator("[data-testid=guest-ready]:enabled").click()
        await guest.locator("[data-testid=guest-waiting]").wait_for()
        row = clerk.locator("[data-testid=guest-row]")
        assert "Dolmetscherin Türkisch" in await row.inner_text()
        await row.locator("[data-testid=guest-admit]").click()
        await guest.locator("[data-testid=guest-call]").wait_for()
        g = await row.get_attribute("data-peer")

        # Everyone gets moving pictures and sound from both others.
        await _moving(guest, "guest", "citizen")
        await _moving(guest, "guest", "clerk")
        await _moving(clerk, "console", g)
        await poll(lambda: asyncio.sleep(0, kiosk.from_guests.get(g)),
                   lambda r: r is not None and r.video_frames > 15 and r.audio_frames > 15, seconds=45)
        captions = await guest.locator("[data-testid=guest-tile] figcaption").all_inner_texts()
        assert len(captions) == 2 and any("Citizen" in c or "Bürger" in c for c in captions), captions
        assert "Dolmetscherin Türkisch" in await clerk.locator("[data-testid=guest-tile]").inner_text()

        # Central drops the interpreter's socket: the page says it reconnects, comes back into the same call by
        # itself, and pictures and sound flow again in every pair with the interpreter.
        await guest.evaluate(SEEN_STATUS_JS)
        for page in (guest, clerk):
            await page.evaluate(MARK_PAIRS_JS)
        from_kiosk = kiosk.from_guests[g].video_frames
        central.hub.guest_links.get(queued.visit_id, g).link.close()
        reconnecting = await guest.evaluate(RECONNECTING_JS)
        await poll(lambda: guest.evaluate("window.seenStatus"), lambda seen: reconnecting in seen)
        await poll(lambda: asyncio.sleep(0, central.hub.guest_links.get(queued.visit_id, g).link),
                   lambda link: link is not None and not link.closed)
        await poll(lambda: guest.evaluate("document.querySelector('#status').textContent"), lambda text: text == "")
        assert await guest.locator("[data-testid=guest-call]").is_visible()
        await _moving(guest, "guest", "citizen")
        await _moving(guest, "guest", "clerk")
        await _moving(clerk, "console", g)
        await poll(lambda: asyncio.sleep(0, kiosk.from_guests[g].video_frames), lambda n: n > from_kiosk + 15,
                   seconds=45)
        assert len(await guest.locator("[data-testid=guest-tile]").all()) == 2
        assert len(await clerk.locator("[data-testid=guest-tile]").all()) == 1

        # The clerk removes the interpreter: their page says so, the call goes on between citizen and clerk.
        await row.locator("[data-testid=guest-remove]").click()
        await guest.locator("[data-testid=guest-ended]").wait_for()
        await clerk.locator("[data-testid=guest-tile]").wait_for(state="detached")
        await poll(lambda: asyncio.sleep(0, list(kiosk.guest_peers)), lambda peers: peers == [])
        before = await clerk.evaluate(CITIZEN_STATS_JS)
        await poll(lambda: clerk.evaluate(CITIZEN_STATS_JS), lambda frames: frames > before + 10)
        assert kiosk.state == "in_call" and await guest.evaluate(
            "window.amtsklingel.state.stream.getTracks().every(t => t.readyState === 'ended')")

        await clerk.click("[data-testid=hangup-button]")
        assert (await kiosk.next_event("visit.ended")).reason == "hangup_staff"
        assert len(central.hub.guest_links) == 0
    finally:
        await kiosk.stop()
        for context in contexts:
            await context.close()
    assert errors == [], errors


HOME_GUEST_JS = """async (peer) => {
  const call = window.amtsklingelHome && window.amtsklingelHome.pcs.get(peer);
  if (!call || call.pc.replaced) return null;
  const out = {video: 0, energy: 0};
  (await call.pc.getStats()).forEach(r => {
    if (r.type === 'inbound-rtp' && r.kind === 'video') out.video = r.framesDecoded || 0;
    if (r.type === 'inbound-rtp' && r.kind === 'audio') out.energy = r.totalAudioEnergy || 0;
  });
  return out;
}"""


async def test_a_colleague_joins_a_visit_from_home_all_in_browsers(central, browser):
    """The citizen at home is a browser too (central/static/home/): the colleague and the citizen see and hear
    each other through their own pair. The citizen's socket is dropped and their page resumes the call (its
    media untouched); the colleague's is dropped and the pair between the two starts afresh. The citizen's
    page loses the colleague's tile on removal."""
    central.hub.call_connect_timeout_s = 60
    central.hub.resume_grace_s = 60  # the fixture's 1 s is shorter than the pages' first wait before reconnecting
    home_context, home = await home_page_waiting(browser, central)
    clerk_context, clerk = await clerk_console(browser, central)
    guest_context = await browser.new_context(permissions=["camera", "microphone"])
    guest = await guest_context.new_page()
    try:
        visit = next(iter(central.hub.rooms.all()))
        await clerk.locator(f"[data-testid=visit-row][data-visit-id='{visit.id}'] "
                            "[data-testid=pickup-button]").click()
        await home.locator("[data-testid=call]").wait_for()
        await clerk.select_option("[data-testid=guest-role]", "colleague")
        await clerk.click("[data-testid=guest-invite]")
        link_field = clerk.locator("[data-testid=guest-link]")
        await link_field.wait_for()
        await guest.goto(await link_field.input_value())
        await guest.click("[data-testid=guest-start]")
        ready = guest.locator("[data-testid=guest-ready]:enabled")
        await ready.wait_for()
        # The socket drops while the colleague checks camera and microphone, and they press "I am ready" before
        # the page is back: once it is, the clerk sees them waiting.
        await guest.evaluate(SEEN_STATUS_JS)
        reconnecting = await guest.evaluate(RECONNECTING_JS)
        (checking,) = central.hub.guest_links.of_visit(visit.id)
        checking.link.close()
        await poll(lambda: guest.evaluate("window.seenStatus"), lambda seen: reconnecting in seen)
        await ready.click()
        row = clerk.locator("[data-testid=guest-row]")
        await row.locator("[data-testid=guest-admit]").click()
        await guest.locator("[data-testid=guest-call]").wait_for()
        g = await row.get_attribute("data-peer")

        await _moving(guest, "guest", "citizen")
        await poll(lambda: home.evaluate(HOME_GUEST_JS, g), _gets_media, seconds=45)

        # The citizen's socket drops: "reconnecting", then back in the same call, and its media never stopped.
        await home.evaluate(SEEN_STATUS_JS.replace("#status", "#problem"))
        reconnecting = await home.evaluate(RECONNECTING_JS)
        lost_home = visit.home_id
        central.hub.homes[lost_home].link.close()
        await poll(lambda: home.evaluate("window.seenStatus"), lambda seen: reconnecting in seen)
        await poll(lambda: asyncio.sleep(0, central.hub.rooms.get(visit.id).home_id), lambda h: h != lost_home)
        await poll(lambda: home.evaluate("document.querySelector('#problem').hidden"), lambda hidden: hidden)
        assert await home.locator("[data-testid=call]").is_visible()
        before = await stats(home, HOME_PC)
        await poll(lambda: stats(home, HOME_PC), lambda s: s["frames"] > before["frames"] + 10)

        # The colleague's socket drops: their page rejoins and the citizen's page offers to them afresh.
        for page in (guest, home):
            await page.evaluate(MARK_PAIRS_JS)
        central.hub.guest_links.get(visit.id, g).link.close()
        await poll(lambda: asyncio.sleep(0, central.hub.guest_links.get(visit.id, g).link),
                   lambda link: link is not None and not link.closed)
        await _moving(guest, "guest", "citizen")
        await poll(lambda: home.evaluate(HOME_GUEST_JS, g), _gets_media, seconds=45)
        await row.locator("[data-testid=guest-remove]").click()
        await guest.locator("[data-testid=guest-ended]").wait_for()
        await poll(lambda: home.evaluate(HOME_GUEST_JS, g), lambda s: s is None)
        await poll(lambda: stats(home, HOME_PC), lambda s: s and s["frames"] > 0)  # still with the clerk
        assert home.errors == []  # type: ignore[attr-defined]
    finally:
        for context in (home_context, clerk_context, guest_context):
            await context.close()
