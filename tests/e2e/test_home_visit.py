"""A citizen at home (a real Chromium page, fake camera and microphone) visits the office: device check,
waiting room, picked up by a clerk in the console page, moving pictures and sound both ways; transferred
to another department in the call and picked up there, the call works again; the end screen."""
from __future__ import annotations

import asyncio

from tests.browser import poll
from tests.e2e.clerk_steps import on_duty

# What arrives over a page's peer connection: decoded frames, a hash of the picture, audio energy.
INBOUND_JS = """async (pc) => {
  if (!pc) return null;
  const out = {};
  (await pc.getStats()).forEach(r => { if (r.type === 'inbound-rtp') out[r.kind] = r; });
  return {frames: out.video ? out.video.framesDecoded : 0, energy: out.audio ? out.audio.totalAudioEnergy || 0 : 0,
          samples: out.audio ? out.audio.totalSamplesReceived : 0};
}"""
# A small hash of what a <video> shows now, to tell a moving picture from a still one.
PICTURE_JS = """(selector) => {
  const v = document.querySelector(selector);
  if (!v || !v.videoWidth) return null;
  const c = document.createElement('canvas'); c.width = 64; c.height = 48;
  const g = c.getContext('2d'); g.drawImage(v, 0, 0, 64, 48);
  const d = g.getImageData(0, 0, 64, 48).data; let h = 0;
  for (let i = 0; i < d.length; i += 4) h = (h * 31 + d[i] + 2 * d[i + 1] + 3 * d[i + 2]) >>> 0;
  return h;
}"""
CLERK_PC = "window.amtsklingel && window.amtsklingel.pc"
HOME_PC = "window.amtsklingelHome && window.amtsklingelHome.pc"


async def stats(page, pc_js: str) -> dict | None:
    return await page.evaluate(f"() => ({INBOUND_JS})({pc_js})")


async def moving_picture_and_sound(page, pc_js: str, video: str) -> None:
    """Frames keep being decoded, the picture changes, and sound with energy arrives."""
    first = await poll(lambda: stats(page, pc_js), lambda s: s and s["frames"] > 10 and s["energy"] > 0, 30)
    still = await poll(lambda: page.evaluate(PICTURE_JS, video), lambda h: h is not None)
    await poll(lambda: page.evaluate(PICTURE_JS, video), lambda h: h is not None and h != still, 10)
    later = await poll(lambda: stats(page, pc_js), lambda s: s["frames"] > first["frames"] + 10, 10)
    assert later["samples"] > first["samples"]


async def home_page_waiting(browser, central, path: str = "/visit/buergerbuero?lang=en"):
    context = await browser.new_context(permissions=["camera", "microphone"], viewport={"width": 390, "height": 844})
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.errors = errors
    await page.goto(central.url + path)
    await page.click("[data-testid=notice-ok]")
    await page.locator("[data-testid=check-status]", has_text="Camera and microphone work.").wait_for()
    await poll(lambda: page.evaluate("document.getElementById('level').value"), lambda v: v > 0, 10)  # it hears
    assert await page.evaluate("document.getElementById('preview').videoWidth") > 0
    await page.click("[data-testid=start]")
    await page.locator("[data-testid=waiting]").wait_for()
    return context, page


async def clerk_console(browser, central):
    context = await browser.new_context(permissions=["camera", "microphone", "notifications"])
    page = await context.new_page()
    await on_duty(page, central)
    return context, page


async def test_a_home_visitor_waits_and_is_picked_up_with_picture_and_sound_both_ways(central, browser):
    clerk_context, clerk = await clerk_console(browser, central)
    home_context, home = await home_page_waiting(browser, central)
    try:
        assert await home.locator("[data-testid=position]").inner_text() == "You are next."
        [visit] = central.hub.rooms.all()
        assert visit.origin == "online" and visit.language == "en"
        row = clerk.locator(f"[data-testid=visit-row][data-visit-id='{visit.id}']")
        await row.wait_for()
        assert "online (from home)" in await row.inner_text()

        await row.locator("[data-testid=pickup-button]").click()
        await home.locator("[data-testid=call]").wait_for()
        await clerk.locator("[data-testid=call-view]").wait_for()
        await moving_picture_and_sound(clerk, CLERK_PC, "#remote-video")  # the citizen, at the clerk
        await moving_picture_and_sound(home, HOME_PC, "#remote-video")    # the clerk, at home
        assert "online (from home)" in await clerk.locator("[data-testid=call-view]").inner_text()

        await clerk.click("[data-testid=hangup-button]")
        await home.locator("[data-testid=ended]").wait_for()
        assert "The office ended the conversation." in await home.locator("[data-testid=ended]").inner_text()
        assert await home.evaluate(HOME_PC) is None
        assert home.errors == []
    finally:
        await home_context.close()
        await clerk_context.close()
    await asyncio.sleep(0.2)
    assert len(central.hub.rooms) == 0 and central.hub.homes == {}


async def test_a_home_visitor_transferred_in_the_call_is_picked_up_again_in_the_other_department(central, browser):
    central.hub.call_connect_timeout_s = 20.0
    clerk_context, clerk = await clerk_console(browser, central)
    home_context, home = await home_page_waiting(browser, central)
    try:
        [visit] = central.hub.rooms.all()
        await clerk.locator(f"[data-testid=visit-row][data-visit-id='{visit.id}'] [data-testid=pickup-button]").click()
        await home.locator("[data-testid=call]").wait_for()
        await moving_picture_and_sound(clerk, CLERK_PC, "#remote-video")

        await clerk.select_option("#call-transfer", "standesamt")
        await home.locator("[data-testid=waiting]").wait_for()
        assert await home.locator("#department-name").inner_text() == "Standesamt"
        assert await home.evaluate(HOME_PC) is None  # the old call is closed

        row = clerk.locator(f"[data-testid=visit-row][data-visit-id='{visit.id}']")
        await row.wait_for()
        await row.locator("[data-testid=pickup-button]").click()
        await home.locator("[data-testid=call]").wait_for()
        await moving_picture_and_sound(clerk, CLERK_PC, "#remote-video")
        await moving_picture_and_sound(home, HOME_PC, "#remote-video")

        await home.click("[data-testid=hangup]")
        await home.locator("[data-testid=ended]").wait_for()
        await clerk.locator("[data-testid=call-view]").wait_for(state="hidden")
        assert home.errors == []
    finally:
        await home_context.close()
        await clerk_context.close()


async def test_a_page_whose_connection_drops_keeps_its_place_and_is_picked_up(central, browser):
    """A phone changing networks: central loses the page's socket; the page reconnects, resumes its visit with
    its token, and the clerk picks it up as if nothing happened."""
    central.hub.resume_grace_s = 30.0  # the test central's is 1 s; the page comes back after a second or two
    clerk = await central.clerk()
    home_context, home = await home_page_waiting(browser, central)
    try:
        [visit] = central.hub.rooms.all()
        [peer] = central.hub.homes.values()
        peer.link.close()  # the connection is gone, as when the network changes
        await poll(lambda: asyncio.sleep(0, [p.id for p in central.hub.homes.values()]),
                   lambda ids: ids and ids != [peer.id], 30)
        await poll(lambda: asyncio.sleep(0, visit.home_id), lambda home_id: home_id != peer.id)
        assert central.hub.rooms.all() == [visit] and not central.hub._grace  # the place is kept, no timer runs
        assert await home.locator("[data-testid=waiting]").is_visible()

        await clerk.send(type="visit.pickup", visit_id=visit.id)
        await clerk.recv("rtc.offer")
        await home.locator("[data-testid=call]").wait_for()
        await clerk.send(type="visit.hangup", visit_id=visit.id)
        await home.locator("[data-testid=ended]").wait_for()
        assert home.errors == []
    finally:
        await home_context.close()


async def test_leaving_the_page_leaves_the_waiting_room_at_once(central, browser):
    central.hub.resume_grace_s = 60.0  # so only the page's own goodbye can end the visit within the test
    clerk = await central.clerk()
    home_context, home = await home_page_waiting(browser, central)
    try:
        [visit] = central.hub.rooms.all()
        await clerk.recv("queue.joined")
        await home.click("main > p > a[href='/visit']")  # "All offices", below the waiting room
        await home.wait_for_url("**/visit")
        left = await clerk.recv("queue.left")
        assert left["visit_id"] == visit.id and left["reason"] == "cancelled"
        assert len(central.hub.rooms) == 0
    finally:
        await home_context.close()
