"""A visit from home with an interpreter: the citizen's page offers to the guest the clerk lets in, as a
kiosk does, and shows them in a tile of their own; the guest sees and hears the citizen; when the clerk
removes the guest, the tile goes and the call between citizen and clerk goes on."""
from __future__ import annotations

from tests.browser import poll
from tests.e2e.test_clerk_call import login
from tests.e2e.test_guest_call import _moving
from tests.e2e.test_home_visit import home_page_waiting

# Frames and sound the citizen's page receives from one participant ("" = the clerk).
HOME_PAIR_JS = """async (peer) => {
  const call = window.amtsklingelHome.pcs.get(peer);
  if (!call) return null;
  const out = {video: 0, energy: 0};
  (await call.pc.getStats()).forEach(r => {
    if (r.type === 'inbound-rtp' && r.kind === 'video') out.video = r.framesDecoded || 0;
    if (r.type === 'inbound-rtp' && r.kind === 'audio') out.energy = r.totalAudioEnergy || 0;
  });
  return out;
}"""


async def moving_at_home(home, peer: str) -> None:
    first = await poll(lambda: home.evaluate(HOME_PAIR_JS, peer), lambda s: s and s["video"] > 15 and s["energy"] > 0,
                       seconds=45)
    await poll(lambda: home.evaluate(HOME_PAIR_JS, peer), lambda s: s and s["video"] > first["video"] + 10)


async def test_an_interpreter_joins_a_visit_from_home(central, browser):
    central.hub.call_connect_timeout_s = 60
    clerk_context = await browser.new_context(permissions=["camera", "microphone"])
    guest_context = await browser.new_context(permissions=["camera", "microphone"])
    clerk, guest = await clerk_context.new_page(), await guest_context.new_page()
    home_context, home = await home_page_waiting(browser, central)
    try:
        await login(clerk, central)
        await clerk.locator("[data-testid=connection-state][data-state=connected]").wait_for()
        await clerk.locator("[data-testid=visit-row] [data-testid=pickup-button]").click()
        await home.locator("[data-testid=call]").wait_for()
        await moving_at_home(home, "")

        await clerk.fill("[data-testid=guest-label]", "Dolmetscherin Arabisch")
        await clerk.click("[data-testid=guest-invite]")
        link = await clerk.locator("[data-testid=guest-link]").input_value()
        await guest.goto(link)
        await guest.click("[data-testid=guest-start]")
        await guest.locator("[data-testid=guest-ready]:enabled").click()
        await guest.locator("[data-testid=guest-waiting]").wait_for()
        row = clerk.locator("[data-testid=guest-row]")
        await row.locator("[data-testid=guest-admit]").click()
        g = await row.get_attribute("data-peer")

        # The citizen's page shows the interpreter, with picture and sound; the interpreter gets the citizen's.
        tile = home.locator(f"[data-testid=participant][data-peer='{g}']")
        await tile.wait_for()
        assert "Dolmetscherin Arabisch" in await tile.inner_text()
        await moving_at_home(home, g)
        await _moving(guest, "guest", "citizen")

        # Removed: the tile goes, the call between citizen and clerk goes on.
        await row.locator("[data-testid=guest-remove]").click()
        await tile.wait_for(state="detached")
        before = await home.evaluate(HOME_PAIR_JS, "")
        await poll(lambda: home.evaluate(HOME_PAIR_JS, ""), lambda s: s["video"] > before["video"] + 10)
        assert await home.evaluate("window.amtsklingelHome.pcs.size") == 1
        await home.click("[data-testid=hangup]")
        await home.locator("[data-testid=ended]").wait_for()
        assert home.errors == []
    finally:
        for context in (home_context, clerk_context, guest_context):
            await context.close()
