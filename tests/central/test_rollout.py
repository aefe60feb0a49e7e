"""The rollout through a running central and real kiosk WebSockets: offers on connect and as rings
open, withdrawals on pause and stop, a rollback pausing the rollout with its reason, retries after an
interrupted install, bad reports refused with a typed error, and reports kept across a restart."""
from __future__ import annotations

import contextlib

import aiohttp
from aiohttp import web

from central.app import create_app
from central.config import Config
from central.updates import control
from tests.central.conftest import Central, running_central
from tests.central.fleet_reports import health
from tests.central.rollout_helpers import NEW, OLD, Bundle, report

BUNDLE = Bundle(7, NEW)


def kiosk_id(token: str) -> int:
    return int(token.split(".")[0])


async def admin_of(central: Central):
    return next(s for s in await central.db.all_staff() if s.username == "admin")


async def settled(kiosk) -> None:
    """Every frame the kiosk sent before has been handled."""
    await kiosk.send(type="ping")
    await kiosk.recv("pong")


async def new_kiosk(central: Central, location: str, version: str = OLD):
    kid, token = await central.db.create_kiosk(location)
    kiosk = await central.kiosk(token)
    await kiosk.send(**health(version=version))
    await settled(kiosk)
    return kid, token, kiosk


async def test_offers_on_connect_and_as_rings_open_never_to_a_kiosk_running_the_version(central):
    admin = await admin_of(central)
    canary_id, canary_token, canary = await new_kiosk(central, "Kanarienvogel")
    _, _, other = await new_kiosk(central, "Andere")
    current_id, _, current = await new_kiosk(central, "Schon neu", version=NEW)

    rollout = await control.start(central.app, admin, BUNDLE, [canary_id, current_id], "now", 512)
    offer = await canary.recv("update.offer")
    assert offer == {"v": 1, "type": "update.offer", "bundle_id": 7, "version": NEW, "size_bytes": 123_456_789,
                     "sha256": "ab" * 32, "path": f"/updates/bundles/7/amtsklingel-{NEW}.raucb",
                     "max_kbit_s": 512, "window": "now"}
    assert await other.quiet() == []     # not a canary
    assert await current.quiet() == []   # runs the version already

    # On connect: right after welcome and settings.
    await canary.ws.close()
    again = await central.kiosk(canary_token)
    assert (await again.recv())["type"] == "update.offer"

    # The next rings: 100 % reaches everyone left; "all" then offers nothing new.
    await control.open_percent(central.app, admin, rollout.id, 100)
    assert (await other.recv("update.offer"))["bundle_id"] == 7
    assert await current.quiet() == []
    await control.open_all(central.app, admin, rollout.id)
    assert await other.quiet() == [] and await again.quiet() == []


async def test_a_rollback_pauses_the_rollout_with_its_reason_and_withdraws_the_bundle(central):
    admin = await admin_of(central)
    first_id, _, first = await new_kiosk(central, "Erste")
    second_id, second_token, second = await new_kiosk(central, "Zweite")
    rollout = await control.start(central.app, admin, BUNDLE, [first_id, second_id], "outside_hours", None)
    await first.recv("update.offer")
    await second.recv("update.offer")
    await second.send(**report("downloading", progress_pct=30, downloaded_bytes=1000))
    for step in [report("offered"), report("downloading", progress_pct=100), report("installed"),
                 report("rebooting"), report("rolled_back", fault="health_check_failed", check="camera")]:
        await first.send(**step)
    assert (await second.recv("update.withdraw")) == {"v": 1, "type": "update.withdraw", "bundle_id": 7}
    assert await first.quiet() == []  # it rolled back: nothing to withdraw there
    paused = central.hub.updates.rollout
    assert paused.state == "paused"
    assert (paused.pause.kiosk_id, paused.pause.fault, paused.pause.check) == (first_id, "health_check_failed",
                                                                                "camera")
    # Paused: a reconnecting kiosk gets no offer.
    await second.ws.close()
    second = await central.kiosk(second_token)
    assert await second.quiet() == []

    # Resumed by IT: offered again to the kiosk still on its way, not to the one that rolled back.
    await control.resume(central.app, admin, rollout.id)
    assert (await second.recv("update.offer"))["bundle_id"] == 7
    assert await first.quiet() == []
    await second.send(**report("offered"))  # it starts over after the withdrawal
    await settled(second)
    assert central.hub.updates.statuses[(second_id, 7)].state == "offered"

    # Stopped: withdrawn from those not done.
    await control.stop(central.app, admin, rollout.id)
    assert (await second.recv("update.withdraw"))["bundle_id"] == 7
    assert central.hub.updates.rollout is None


async def test_a_final_refusal_pauses_and_an_interrupted_install_is_offered_again(central):
    admin = await admin_of(central)
    first_id, first_token, first = await new_kiosk(central, "Erste")
    second_id, _, second = await new_kiosk(central, "Zweite")
    await control.start(central.app, admin, BUNDLE, [first_id, second_id], "now", None)
    await first.recv("update.offer")
    await second.recv("update.offer")
    await first.send(**report("downloading", progress_pct=50))
    await first.send(**report("failed", fault="interrupted"))
    await settled(first)
    assert central.hub.updates.rollout.state == "active"
    await first.ws.close()
    first = await central.kiosk(first_token)
    assert (await first.recv())["type"] == "update.offer"  # retried on the next connect

    await second.send(**report("failed", fault="signature_invalid"))
    await settled(second)
    rollout = central.hub.updates.rollout
    assert (rollout.state, rollout.pause.kiosk_id, rollout.pause.fault) == ("paused", second_id, "signature_invalid")
    assert (await first.recv("update.withdraw"))["bundle_id"] == 7


async def test_bad_update_reports_get_a_typed_error_and_change_nothing(central):
    admin = await admin_of(central)
    kid, _, kiosk = await new_kiosk(central, "Prüfstand")
    _, _, stranger = await new_kiosk(central, "Fremd")
    await control.start(central.app, admin, BUNDLE, [kid], "now", None)
    await kiosk.recv("update.offer")
    await kiosk.send(**report("installed"))
    await settled(kiosk)
    before = dict(central.hub.updates.statuses)
    cases = [
        (stranger, report("offered"), "not_offered"),                         # never offered to it
        (kiosk, report("offered", bundle_id=99, version="9.9"), "not_offered"),  # a bundle central does not know
        (kiosk, report("downloading", progress_pct=5), "wrong_state"),        # back from installed
        (kiosk, report("rolled_back"), "invalid_field"),                       # without its fault
        (kiosk, report("installed", version="0.5"), "invalid_field"),          # another version than offered
        (kiosk, report("installed", reboot_at="x" * 70_000), "too_large"),     # over the frame limit
        (kiosk, report("installed", progress_pct=101), "invalid_field"),
    ]
    for peer, frame, code in cases:
        await peer.send(**frame)
        error = await peer.recv("error")
        assert error["code"] == code, (frame["state"], error)
    assert central.hub.updates.statuses == before
    assert central.hub.updates.rollout.state == "active"
    await kiosk.send(**report("rebooting"))  # the kiosk stays connected and goes on
    await settled(kiosk)
    assert central.hub.updates.statuses[(kid, 7)].state == "rebooting"


@contextlib.asynccontextmanager
async def central_again(config: Config, credentials: dict, session):
    """Central started again on the same database (nothing seeded)."""
    app = create_app(config)
    runner = web.AppRunner(app, shutdown_timeout=1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    try:
        yield Central(f"http://127.0.0.1:{port}", app, credentials, None, session)
    finally:
        await runner.cleanup()


async def test_rollout_and_reports_survive_a_restart_of_central(tmp_path):
    config = Config(database_url=f"sqlite:///{tmp_path}/central.db", secure_cookies=False)
    async with running_central(config) as central:
        admin = await admin_of(central)
        token = central.credentials["kiosk_token"]
        kiosk = await central.kiosk(token)
        rollout = await control.start(central.app, admin, BUNDLE, [kiosk_id(token)], "now", 256)
        await kiosk.recv("update.offer")
        await kiosk.send(**report("downloading", progress_pct=40, downloaded_bytes=4096))
        await settled(kiosk)
        credentials = central.credentials
    async with contextlib.AsyncExitStack() as stack:
        session = await stack.enter_async_context(aiohttp.ClientSession())
        again = await stack.enter_async_context(central_again(config, credentials, session))
        book = again.hub.updates
        assert book.rollout == rollout
        status = book.statuses[(kiosk_id(token), 7)]
        assert (status.state, status.progress_pct, status.downloaded_bytes) == ("downloading", 40, 4096)
        kiosk = await again.kiosk(token)
        assert (await kiosk.recv())["type"] == "update.offer"  # still targeted, not done
        await kiosk.send(**report("installed"))  # goes on from where it was
        await settled(kiosk)


async def test_a_kiosk_away_while_its_bundle_was_withdrawn_hears_on_connect(central):
    admin = await admin_of(central)
    kid, token, kiosk = await new_kiosk(central, "Unterwegs")
    other_id, other_token, other = await new_kiosk(central, "Auch unterwegs")
    rollout = await control.start(central.app, admin, BUNDLE, [kid, other_id], "outside_hours", None)
    for peer in (kiosk, other):
        await peer.recv("update.offer")
        await peer.send(**report("installed", reboot_at="2026-12-04T22:00:00+01:00"))
        await settled(peer)
    await kiosk.ws.close()
    await control.pause(central.app, admin, rollout.id)  # while it is away
    assert (await other.recv())["type"] == "update.withdraw"  # connected: told at once
    kiosk = await central.kiosk(token)
    assert await kiosk.recv() == {"v": 1, "type": "update.withdraw", "bundle_id": 7}
    assert await kiosk.quiet() == []
    await other.ws.close()
    other = await central.kiosk(other_token)
    assert await other.quiet() == []  # it was told already

    await control.resume(central.app, admin, rollout.id)
    assert (await kiosk.recv("update.offer"))["bundle_id"] == 7
    await kiosk.ws.close()
    kiosk = await central.kiosk(token)
    assert (await kiosk.recv())["type"] == "update.offer"  # live again: the offer, no withdrawal
    await other.ws.close()
    await control.stop(central.app, admin, rollout.id)
    other = await central.kiosk(other_token)
    assert (await other.recv())["type"] == "update.withdraw"
