"""A real central process stopped (SIGTERM) and killed (SIGKILL) while citizens wait and one is
in a call: when it is back, everyone is in their place in their order, and the call can be hung up."""
from __future__ import annotations

import asyncio
import signal

import aiohttp
import pytest

from central.seed import seed_demo
from central.storage import Database
from tests.central.central_processes import CentralProcess, Console, one_in_a_call_and_others_waiting, waiting_ids

WAITING = 3


@pytest.fixture
def central_process(tmp_path):
    central = CentralProcess(tmp_path)
    yield central
    central.kill_if_running()


async def test_waiting_places_and_a_running_call_survive_sigterm_and_sigkill(central_process):
    central = central_process
    db = await Database.open(central.database_url)
    try:
        credentials = await seed_demo(db)
        tokens = [(await db.create_kiosk(f"Ort {i}"))[1] for i in range(WAITING)]
    finally:
        await db.close()

    async with aiohttp.ClientSession() as session:
        await central.start(session)
        scene = await one_in_a_call_and_others_waiting(central, session, credentials, tokens, "buergerbuero")
        calling, waiting, clerk, order = scene.calling, scene.waiting, scene.clerk, scene.order

        for sig in (signal.SIGTERM, signal.SIGKILL):
            stopped = asyncio.gather(*(k.closed() for k in [calling, *waiting]))
            returncode = await central.stop(sig)
            codes = await stopped
            await clerk.close()
            if sig is signal.SIGTERM:
                assert returncode == 0
                assert codes == [aiohttp.WSCloseCode.SERVICE_RESTART] * (WAITING + 1)  # at once, not by timeout
            await central.start(session)

            # The kiosks come back in reverse order: their places come from their tokens.
            for kiosk in reversed(waiting):
                assert (await kiosk.resume())["state"] == "waiting"
            assert (await calling.resume())["state"] == "in_call"
            for place, kiosk in enumerate(waiting, start=1):
                await kiosk.until_position(place)
            clerk = Console(central, "sachbearbeiterin", credentials["clerk_password"])
            await clerk.login()
            snapshot = await clerk.connect()
            assert snapshot["presence"] == "in_call", sig
            assert waiting_ids(snapshot, "buergerbuero") == order, sig
            assigned = await clerk.recv("call.assigned")
            assert assigned["visit"]["visit_id"] == calling.visit_id and assigned["resumed"] is True

        await clerk.send(type="visit.hangup", visit_id=calling.visit_id)
        assert (await calling.recv("visit.ended"))["reason"] == "hangup_staff"
        assert not [m for m in calling.seen if m["type"] == "call.start"][1:]  # never renegotiated
        for kiosk in waiting:
            assert not [m for m in kiosk.seen if m["type"] == "visit.ended"]
        await clerk.close()
        assert await central.stop(signal.SIGTERM) == 0
    log = central.log.read_text()
    assert "Traceback" not in log, log
