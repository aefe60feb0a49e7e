"""A clerk's steps in the staff console, the same in Chromium (a Playwright page) and in Firefox
(tests.firefox.Firefox, whose steps carry the Playwright page's names): log in, be connected, pick up a visit."""
from __future__ import annotations

CONSOLE = "[data-testid=connection-state]"
CONNECTED = "[data-testid=connection-state][data-state=connected]"


async def login(clerk, central) -> None:
    """The clerk logs in on central's login page, which takes them to the console."""
    await clerk.goto(central.url + "/login")
    await clerk.fill("input[name=username]", central.credentials["clerk_user"])
    await clerk.fill("input[name=password]", central.credentials["clerk_password"])
    await clerk.click("button[type=submit]")
    await clerk.wait_for_selector(CONSOLE)


async def on_duty(clerk, central) -> None:
    """The clerk logs in and their console is connected to central: visits reach it."""
    await login(clerk, central)
    await clerk.wait_for_selector(CONNECTED)


async def pick_up(clerk, visit_id: str | None = None) -> None:
    """The clerk picks up the visit ``visit_id`` (or the first one listed) and the call view opens."""
    row = "[data-testid=visit-row]" + (f"[data-visit-id='{visit_id}']" if visit_id is not None else "")
    await clerk.click(f"{row} [data-testid=pickup-button]")
    await clerk.wait_for_selector("[data-testid=call-view]")
