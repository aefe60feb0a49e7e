"""City IT learns which clerks' browsers lack H.264 (a Pi 4 kiosk then encodes VP8 in software):
central reads it from each clerk's answer and shows it on the staff page and in /metrics."""
from __future__ import annotations

import asyncio
import re

import pytest

from central.config import Config
from central.live.clerk_video import answered_video, browser_name
from tests.central.conftest import running_central
from tests.central.test_metrics import TOKEN, promtool, scrape

FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
CHROMIUM = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/131.0.0.0 Safari/537.36"
OFFER = ("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 1\r\n"
         "m=video 9 UDP/TLS/RTP/SAVPF 102 97 98\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=sendrecv\r\n"
         "a=rtpmap:102 H264/90000\r\na=fmtp:102 packetization-mode=1;profile-level-id=42e01f\r\n"
         "a=rtpmap:97 VP8/90000\r\na=rtpmap:98 rtx/90000\r\na=fmtp:98 apt=97\r\n"
         "m=audio 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=mid:1\r\na=sendrecv\r\na=rtpmap:96 opus/48000/2\r\n")


def answer(video: str) -> str:
    """An answer whose video section is ``video`` (from the m= line on), audio accepted."""
    return ("v=0\r\no=- 2 2 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 1\r\n" + video +
            "m=audio 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=mid:1\r\na=sendrecv\r\n"
            "a=rtpmap:96 opus/48000/2\r\n")


CHROMIUM_ANSWER = answer("m=video 9 UDP/TLS/RTP/SAVPF 102 97\r\na=mid:0\r\na=sendrecv\r\n"
                         "a=rtpmap:102 H264/90000\r\na=rtpmap:97 VP8/90000\r\n")
FIREFOX_ANSWER = answer("m=video 9 UDP/TLS/RTP/SAVPF 97 98\r\na=mid:0\r\na=sendrecv\r\n"
                        "a=rtpmap:97 VP8/90000\r\na=rtpmap:98 rtx/90000\r\n")
REFUSED_ANSWER = answer("m=video 0 UDP/TLS/RTP/SAVPF 120\r\nc=IN IP4 0.0.0.0\r\na=inactive\r\na=mid:0\r\n"
                        "a=rtpmap:120 VP8/90000\r\n")


@pytest.mark.parametrize("user_agent,name", [
    (FIREFOX, "Firefox 128"), (CHROMIUM, "Chrome 131"),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 "
     "Safari/537.36 Edg/131.0.2903.86", "Edge 131"),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 14_1) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 "
     "Safari/605.1.15", "Safari 17"),
    (None, "unknown browser")])
def test_the_browser_is_named_by_name_and_major_version(user_agent, name):
    assert browser_name(user_agent) == name


def test_the_answer_tells_h264_the_first_codec_or_a_refusal():
    chromium, firefox, refused = (answered_video(sdp, None) for sdp in (CHROMIUM_ANSWER, FIREFOX_ANSWER,
                                                                          REFUSED_ANSWER))
    assert (chromium.h264, chromium.video) == (True, "h264")
    assert (firefox.h264, firefox.video) == (False, "vp8")
    assert (refused.h264, refused.video) == (False, "none")  # not its dummy VP8
    assert answered_video(answer("").replace("m=video", "m=audio"), None) is None


@pytest.fixture
async def central(tmp_path):
    config = Config(database_url=f"sqlite:///{tmp_path}/central.db", secure_cookies=False, metrics_token=TOKEN)
    async with running_central(config) as c:
        yield c


async def call_answered(central, clerk, sdp: str) -> None:
    kiosk = await central.kiosk()
    await kiosk.send(type="visit.request", department="buergerbuero")
    visit = (await kiosk.recv("visit.queued"))["visit_id"]
    await clerk.send(type="visit.pickup", visit_id=visit)
    await clerk.recv("call.assigned")
    await kiosk.recv("call.start")
    await kiosk.send(type="rtc.offer", visit_id=visit, sdp=OFFER)
    await clerk.recv("rtc.offer")
    await clerk.send(type="rtc.answer", visit_id=visit, sdp=sdp)
    assert (await kiosk.recv("rtc.answer"))["sdp"] == sdp  # passed on unchanged
    await clerk.send(type="visit.hangup", visit_id=visit)
    await clerk.recv("visit.ended")


async def recorded(central, video: str) -> None:
    """Until some account's latest call is stored with ``video`` (written in the background, as the
    visit counters are)."""
    async with asyncio.timeout(5):
        while True:
            if any(seen.video == video for seen in (await central.db.staff_browsers.all()).values()):
                return
            await asyncio.sleep(0.05)


async def staff_row(central, username: str) -> str:
    session = await central.login("admin", central.credentials["admin_password"])
    session.cookie_jar.update_cookies({"ak_lang": "en"})
    async with session.get(central.url + "/admin/staff") as r:
        page = await r.text()
    found = re.search(rf"<tr[^>]*>\s*<td><code>{username}</code>.*?</tr>", page, re.S)
    assert found, f"no row for {username}"
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", found.group(0))).strip()


async def test_it_sees_which_clerks_browser_lacks_h264_on_the_staff_page_and_in_metrics(central):
    assert "no call yet" in await staff_row(central, "sachbearbeiterin")
    firefox = await central.clerk(user_agent=FIREFOX)
    await call_answered(central, firefox, FIREFOX_ANSWER)
    await firefox.ws.close()
    second = await central.new_clerk("zweiter", ["buergerbuero"])
    await call_answered(central, second, CHROMIUM_ANSWER)  # aiohttp's own User-Agent: no browser IT knows

    await recorded(central, "vp8")
    await recorded(central, "h264")
    assert "Firefox 128: no H.264 – Pi 4 kiosks encode a smaller picture in software" in \
        await staff_row(central, "sachbearbeiterin")
    assert "unknown browser: H.264" in await staff_row(central, "zweiter")

    status, _, text = await scrape(central)
    assert status == 200 and promtool("check", "metrics", stdin=text).returncode == 0
    assert 'amtsklingel_clerk_browsers{h264="no",video="vp8"} 1' in text.splitlines()
    assert 'amtsklingel_clerk_browsers{h264="yes",video="h264"} 1' in text.splitlines()

    firefox = await central.clerk(user_agent=FIREFOX)  # the same clerk's next call: only the latest counts
    await call_answered(central, firefox, REFUSED_ANSWER)
    await recorded(central, "none")
    assert "Firefox 128: took no video (sound only)" in await staff_row(central, "sachbearbeiterin")
    text = (await scrape(central))[2]
    assert 'amtsklingel_clerk_browsers{h264="no",video="none"} 1' in text.splitlines()
    assert 'amtsklingel_clerk_browsers{h264="no",video="vp8"}' not in text
