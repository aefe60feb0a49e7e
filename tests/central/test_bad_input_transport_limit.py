"""A frame far beyond the transport limit closes the sender's socket and nothing else.

In the world of tests/central/bad_input.py: the bystanders hear nothing, a kiosk's visit keeps its place
for the grace period and is resumed, a console is simply gone.
"""
from __future__ import annotations

import asyncio
import contextlib

import aiohttp
import pytest

from central.live.sockets import TRANSPORT_LIMIT
from protocol import messages as m
from tests.central.bad_input import SYNC_TIMEOUT, build_world, exchange, hub_state, server_errors

pytestmark = pytest.mark.usefixtures("cheap_password_hashing")


@pytest.mark.parametrize(("socket", "state"), [("kiosk", "waiting"), ("staff", "idle")])
async def test_a_frame_far_beyond_the_transport_limit_closes_only_that_socket(central, socket, state, caplog):
    world = await build_world(central, socket, state)
    central.hub.resume_grace_s = 60  # the kiosk below resumes in milliseconds, but never race a 1 s timer
    before, before_untold = hub_state(central.hub), hub_state(central.hub, told=False)

    sending = asyncio.create_task(world.sender.send_raw("x" * (4 * TRANSPORT_LIMIT)))
    async with asyncio.timeout(SYNC_TIMEOUT):
        closing = await world.sender.ws.receive()
    # Central hangs up after reading the frame's header: the rest of 4 MiB may no longer get out.
    with contextlib.suppress(ConnectionError):
        await sending
    assert closing.type == aiohttp.WSMsgType.CLOSE, closing
    assert closing.data == aiohttp.WSCloseCode.MESSAGE_TOO_BIG == 1009

    seen = await world.quiet_everywhere()
    if socket == "kiosk":
        assert seen == {name: [] for name in world.bystanders}
        # Only the connection is gone: the visit keeps its place for the grace period, as after any lost
        # connection, and the kiosk takes it back when it reconnects.
        after = hub_state(central.hub)
        assert after == {**before, "kiosks": [k for k in before["kiosks"] if k != world.kiosk_id],
                         "grace": [world.own]}
        again = await central.kiosk(world.kiosk_token)
        resumed = await exchange(again, {"type": "visit.resume", "visit_id": world.own,
                                         "resume_token": world.own_token}, direction=m.CENTRAL_TO_KIOSK)
        assert [(r["type"], r["state"], r["position"]) for r in resumed] == [("visit.resumed", "waiting", 1)]
        assert hub_state(central.hub) == before
    else:
        # One clerk fewer on duty: the waiting kiosk may hear a longer expected wait, but keeps its place.
        update = seen.pop("waiting kiosk")
        assert [(u["type"], u["visit_id"], u["position"]) for u in update] in (
            [], [("visit.position", world.waiting, 1)]), update
        assert seen == {name: [] for name in world.bystanders if name != "waiting kiosk"}
        after = hub_state(central.hub, told=False)
        assert len(after["staff"]) == len(before_untold["staff"]) - 1
        assert after == {**before_untold, "staff": [s for s in before_untold["staff"] if s[0] in central.hub.staff]}
    assert await world.quiet_everywhere() == {name: [] for name in world.bystanders}
    assert not server_errors(caplog)
