"""The visit from home with what the citizen's device has: camera refused → sound only, said clearly, and
the clerk's picture still arrives; no microphone at all → a clear message and the office's phone number."""
from __future__ import annotations

# The browser refuses the camera (the citizen said no, or there is none); the microphone works.
CAMERA_REFUSED_JS = """(() => {
  const real = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
  navigator.mediaDevices.getUserMedia = (c) => c && c.video
    ? Promise.reject(new DOMException('refused', 'NotAllowedError')) : real(c);
})()"""
# Neither camera nor microphone.
NOTHING_JS = """(() => {
  navigator.mediaDevices.getUserMedia = () => Promise.reject(new DOMException('none', 'NotFoundError'));
})()"""


async def open_home(browser, central, init_js: str, lang: str = "en"):
    context = await browser.new_context(permissions=["camera", "microphone"])
    await context.add_init_script(init_js)
    page = await context.new_page()
    await page.goto(f"{central.url}/visit/buergerbuero?lang={lang}")
    await page.click("[data-testid=notice-ok]")
    return context, page


async def test_without_camera_the_visit_goes_on_with_sound_only(central, browser):
    clerk = await central.clerk()
    context, page = await open_home(browser, central, CAMERA_REFUSED_JS)
    try:
        status = page.locator("[data-testid=check-status]")
        await status.filter(has_text="No camera: you will talk with sound only.").wait_for()
        assert await page.locator("#preview").is_hidden()
        await page.click("[data-testid=start]")
        await page.locator("[data-testid=waiting]").wait_for()
        joined = await clerk.recv("queue.joined")
        await clerk.send(type="visit.pickup", visit_id=joined["visit"]["visit_id"])
        offer = await clerk.recv("rtc.offer")
        # The offer sends sound and still receives the clerk's picture.
        sections = offer["sdp"].split("m=")[1:]
        audio = next(s for s in sections if s.startswith("audio"))
        video = next(s for s in sections if s.startswith("video"))
        assert "a=sendrecv" in audio and "a=recvonly" in video
        assert await page.locator("[data-testid=call]").is_visible()
        assert await page.locator("#self-video").is_hidden()
    finally:
        await context.close()


async def test_without_microphone_the_office_phone_number_is_given(central, browser):
    hub = central.hub
    await central.db.home_visits.save("buergerbuero", "+49 30 1234-567", None)
    hub.set_departments(await central.db.departments())
    assert hub.departments["buergerbuero"].phone == "+49 30 1234-567"
    context, page = await open_home(browser, central, NOTHING_JS, lang="de")
    try:
        await page.locator("[data-testid=no-devices]").wait_for()
        text = await page.locator("[data-testid=no-devices]").inner_text()
        assert "kein Mikrofon" in text and "Bitte rufen Sie stattdessen das Amt an" in text
        phone = page.locator("[data-testid=phone]")
        assert await phone.inner_text() == "+49 30 1234-567"
        assert await phone.get_attribute("href") == "tel:+49301234567"
        assert len(hub.rooms) == 0  # nothing was requested
    finally:
        await context.close()


async def test_without_microphone_and_without_a_number_the_citizen_is_told_what_else_to_do(central, browser):
    context, page = await open_home(browser, central, NOTHING_JS)
    try:
        await page.locator("[data-testid=no-devices]").wait_for()
        assert "Please come to the office" in await page.locator("[data-testid=no-devices]").inner_text()
        assert await page.locator("[data-testid=phone]").count() == 0
    finally:
        await context.close()


async def test_a_booking_code_in_the_link_is_sent_with_the_request(central, browser):
    """?booking=7k3m-9qx2 is normalised and sent; central's answer (unknown here) is shown in words."""
    context = await browser.new_context(permissions=["camera", "microphone"])
    page = await context.new_page()
    try:
        await page.goto(f"{central.url}/visit/buergerbuero?lang=en&booking=7k3m-9qx2")
        await page.click("[data-testid=notice-ok]")
        await page.click("[data-testid=start]")
        await page.locator("[data-testid=problem]", has_text="This booking code is not known").wait_for()
        assert len(central.hub.rooms) == 0
    finally:
        await context.close()

