"""Central's rollout takes what the real update agent says: the agent (appliance/update/, fake slots, a
bundle server) is offered the bundle as central offers it and its every report goes through central's
checks (central/updates/book.py). None is refused; a rollback pauses the rollout with the agent's reason;
an interrupted install is offered again and goes on."""
from __future__ import annotations

import asyncio

import pytest

from appliance.update.fake_slots import fake_bundle
from central.updates.book import UpdateBook
from central.updates.rings import Rollout
from protocol.errors import ProtocolError
from tests.appliance.bundle_server import PATH, BundleServer, serving
from tests.appliance.update_unit import Unit
from tests.polling import until

KIOSK = 1


class CentralSide(Unit):
    """The unit, its reports going to central's book instead of a list; every refusal is kept."""

    def __init__(self, tmp, server, book: UpdateBook) -> None:  # noqa: ANN001
        super().__init__(tmp, server)
        self.book, self.refused = book, []

    async def send(self, msg) -> None:  # noqa: ANN001
        await super().send(msg)
        try:
            self.book.record(KIOSK, msg)
        except ProtocolError as exc:
            self.refused.append((msg.state, exc))

    async def offered(self) -> None:
        """Central offers on (re)connect if the rules say so: the offer the agent gets is the book's."""
        rollout = self.book.offer_for(KIOSK, self.agent.running_version)
        if rollout is not None:
            await self.agent.handle(self.offer())


@pytest.fixture
async def unit(tmp_path):
    async with serving(BundleServer(fake_bundle("2.0"))) as server:
        book = UpdateBook()
        book.set_rollout(Rollout(id=1, bundle_id=7, version="2.0", size_bytes=len(server.data), sha256=server.sha256,
                                 path=PATH, canary=frozenset({KIOSK}), window="now"))
        unit = CentralSide(tmp_path, server, book)
        yield unit
        if unit.agent is not None:
            await unit.agent.close()


async def test_the_whole_way_to_running_is_taken_and_then_never_offered_again(unit):
    await unit.boot()
    await unit.offered()
    await unit.reached("rebooting")
    await unit.rebooted()
    unit.slots.reboot()
    await unit.boot()
    await unit.offered()  # it connects again: central still knows the old version from its last health report
    await unit.reached("running")
    await until(lambda: unit.book.statuses[(KIOSK, 7)].state == "running")
    assert unit.refused == []
    assert unit.book.offer_for(KIOSK, "1.0") is None and unit.book.offer_for(KIOSK, "2.0") is None


async def test_a_failed_trial_pauses_the_rollout_with_the_agents_reason(unit):
    await unit.boot()
    await unit.offered()
    await unit.reached("rebooting")
    await unit.rebooted()
    unit.slots.reboot()

    async def page_broken() -> bool:
        return False
    await unit.boot({"appliance_ready": lambda: asyncio.sleep(0, True), "kiosk_page": page_broken,
                     "central": lambda: asyncio.sleep(0, True)})
    unit.slots.reboot()
    await unit.boot()
    await unit.offered()
    await unit.reached("rolled_back")
    assert unit.refused == []
    rollout = unit.book.rollout
    assert (rollout.state, rollout.pause.fault, rollout.pause.check) == ("paused", "health_check_failed", "kiosk_page")


async def test_an_interrupted_install_is_offered_again_and_goes_on(unit):
    await unit.boot()
    unit.book.offer_for(KIOSK, "1.0")  # central notes the offer as it sends it
    await unit.agent.handle(unit.offer(max_kbit_s=800))  # slow, so power can go in the middle
    await unit.reached("downloading")
    await unit.agent.close()  # power gone
    unit.slots.reboot()
    await unit.boot()
    await unit.reached("failed")
    assert unit.book.statuses[(KIOSK, 7)].fault == "interrupted" and unit.book.rollout.state == "active"
    await unit.offered()
    await unit.reached("rebooting")
    assert unit.refused == []
