"""The whole appliance (fake hardware, Pi 4 passthrough) in a call with a clerk and an interpreter, central
played by the test and both browsers by aiortc: the kiosk offers to the interpreter when central says they
joined, both see the citizen, the speaker plays both voices, the kiosk page gets the interpreter's picture,
and when the interpreter is removed the call with the clerk goes on. The site's upload for a call (the kiosk's
settings from central) is shared by the two copies of the citizen's picture while the interpreter is there."""
from __future__ import annotations

import numpy as np
import pytest

from appliance.call.upload import picture_share
from appliance.config import ApplianceConfig
from appliance.controller.view import Participant, Screen
from appliance.service.main import start
from tests.appliance.fake_central import fake_central
from tests.appliance.mesh_rig import Remote, moving
from tests.appliance.test_speaker_mix import strength
from tests.browser import require_isolated_network
from tests.polling import until, view_until

VISIT, TOKEN, GUEST = "v" * 24, "r" * 24, "g-interpreter1"
UPLOAD_KBIT_S, CAMERA_BITRATE = 1500, 1_000_000  # the site's uplink for calls; the fake camera's bitrate
SETTINGS = dict(version=2, location="Rathaus Musterdorf", departments=["buergerbuero"], default_language="de",
                languages=["de", "en"], volume_pct=70, mic_gain_db=0, brightness_pct=100,
                screen_off_outside_hours=False, call_upload_kbit_s=UPLOAD_KBIT_S)


def sent(conn, kind: str, peer: str | None = None) -> list[dict]:
    return [msg for msg in conn.received if msg["type"] == kind and msg.get("peer") == peer]


async def next_sent(conn, kind: str, peer: str | None = None, after: int = 0) -> dict:
    found = await until(lambda: sent(conn, kind, peer)[after:], 20, what=f"the kiosk's {kind} for {peer or 'the clerk'}")
    return found[0]


@pytest.fixture
async def call(tmp_path):
    require_isolated_network()
    async with fake_central() as central:
        config = ApplianceConfig(central_url=central.url, token="t" * 24, kiosk_port=0, data_dir=tmp_path,
                                 hardware={"backend": "fake", "camera": {"encoded": True, "width": 640, "height": 480}},
                                 ice_networks=("127.0.0.0/8",))
        unit = await start(config)
        clerk, guest = Remote("clerk", 500), Remote("interpreter", 1200)
        try:
            conn = await central.connection(1)
            await view_until(unit, lambda v: v.online)
            await conn.send(type="kiosk.settings", settings=SETTINGS)
            await conn.recv("kiosk.settings.applied")
            unit.controller.post("choose", "buergerbuero")
            await view_until(unit, lambda v: v.screen is Screen.CONSENT)
            unit.controller.post("confirm")
            await conn.recv("visit.request")
            await conn.send(type="visit.queued", visit_id=VISIT, resume_token=TOKEN, department="buergerbuero",
                            position=1, expected_wait_s=0)
            await conn.send(type="call.start", visit_id=VISIT, ice_servers=[], resume_token=TOKEN)
            offer = await next_sent(conn, "rtc.offer")
            await conn.send(type="rtc.answer", visit_id=VISIT, sdp=await clerk.answer(offer["sdp"]))
            await next_sent(conn, "rtc.state")
            yield unit, conn, clerk, guest
        finally:
            await unit.close()
            await clerk.close()
            await guest.close()


async def test_an_interpreter_joins_sees_and_hears_the_citizen_and_is_seen_and_heard_then_leaves(call):
    unit, conn, clerk, guest = call
    await conn.send(type="call.participant_joined", visit_id=VISIT, peer=GUEST, role="interpreter",
                    label="Dolmetscherin (Arabisch)", offer=True)
    offer = await next_sent(conn, "rtc.offer", GUEST)
    await conn.send(type="rtc.answer", visit_id=VISIT, peer=GUEST, sdp=await guest.answer(offer["sdp"]))
    assert (await next_sent(conn, "rtc.state", GUEST))["state"] == "connected"
    view = unit.controller.view
    assert view.participants == (Participant(GUEST, "interpreter", "Dolmetscherin (Arabisch)"),)
    assert unit.bridge.current_view()["participants"][0]["role"] == "interpreter"  # what the page gets

    assert moving(await guest.pictures(20)) and moving(await clerk.pictures(20))  # the citizen, for both
    encoder = unit.hardware.camera._encoder  # each copy of the picture at its share of the site's upload
    await until(lambda: encoder.bitrate == picture_share(UPLOAD_KBIT_S, 2, CAMERA_BITRATE) < CAMERA_BITRATE, 10,
                what="the camera's encoder at the share of the upload for two peers")
    assert (await guest.audio_frames(5))[0].sample_rate == 48000
    feed = unit.guest_video.feed(GUEST)
    await until(lambda: feed.mode == "encoded", 20, what="the interpreter's picture on the kiosk page's feed")
    speaker = unit.hardware.speaker

    def both_heard() -> bool:
        sound = speaker.played()[-48000:].astype(np.float64)
        return len(sound) == 48000 and strength(sound, 1200) > 0.05 * strength(sound, 500) > 0
    await until(both_heard, 20, what="the clerk's and the interpreter's voices on the speaker")

    await conn.send(type="call.participant_left", visit_id=VISIT, peer=GUEST)
    await view_until(unit, lambda v: v.participants == ())
    assert moving(await clerk.pictures(30))  # the call goes on
    await until(lambda: encoder.bitrate == CAMERA_BITRATE, 10, what="the camera's whole bitrate for the clerk again")
    assert unit.controller.view.screen is Screen.IN_CALL
    assert [msg["state"] for msg in sent(conn, "rtc.state")] == ["connected"]  # the clerk's pair never failed
