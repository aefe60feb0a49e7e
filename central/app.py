"""Application factory: ``create_app(config)`` wires storage, waiting rooms, hub and pages."""
from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable
from pathlib import Path
from zoneinfo import ZoneInfo

from aiohttp import WSCloseCode, web

from central import logfilter
from central.bookings.forgetting import keep_forgetting
from central.cluster import web as cluster_web
from central.collector import Together, keep_freezing
from central.config import Config
from central.fleet import enrol_socket
from central.fleet import settings as fleet_settings
from central.fleet.persist import FleetWriter
from central.fleet.registry import FleetRegistry
from central.fleet.settings import ActionBook
from central.live import home_socket
from central.live.candidates import CandidateFilter
from central.live.hub import Hub
from central.live.ice import IceServers
from central.live.limits import GUEST_CONNECTS, HOME_CONNECTS, KIOSK_CONNECTS, Buckets
from central.live.relay import SignalingRelay
from central.live.shared_limits import LocalLimit, ValkeyLimit
from central.live.sockets import guest_socket, kiosk_socket, staff_socket
from central.passwords import PasswordWorkers
from central.rooms import WaitingRooms
from central.rooms.estimate import WaitEstimator
from central.rooms.guest_links import GuestLinks
from central.rooms.resume_token import ResumeTokens
from central.storage import Database
from central.updates import control as rollout_control
from central.updates import download as bundle_download
from central.updates import sync as rollout_sync
from central.updates.library import BundleLibrary
from central.updates.persist import UpdateWriter
from central.web import (
    admin,
    auth,
    booking,
    booking_view,
    console,
    console_bookings,
    consoles,
    guest,
    home,
    login,
    metrics,
    status,
)
from central.web.booking_guard import BookingLimits
from central.web.client_gone import quiet_when_client_left
from central.web.throttle import LoginThrottle

log = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"


def create_app(config: Config, *, now: Callable[[], dt.datetime] | None = None) -> web.Application:
    """Build central. ``now`` replaces the clock in tests of office hours."""
    logfilter.install()  # no client address in the log, whoever configured the handlers
    app = web.Application(middlewares=[quiet_when_client_left, auth.security_headers, refuse_while_stopping,
                                       cluster_web.refuse_websockets_on_standby, auth.session_middleware],
                          client_max_size=256 * 1024)
    app["config"] = config
    app["stopping"] = asyncio.Event()  # set once shutdown began (an Event: the app's state is frozen by then)
    app["websockets"] = set()  # every open kiosk and console socket, closed at once on shutdown
    app["lost_lead"] = asyncio.Event()  # several centrals: this one lost the lease and must restart as a standby
    app["background"] = set()
    app["kiosk_actions"] = ActionBook()  # actions sent to kiosks lately, for their pages
    app["rollout_lock"] = asyncio.Lock()  # one admin action on the rollout at a time (central/updates/control.py)
    app["kiosk_connects"] = Buckets(KIOSK_CONNECTS)  # per kiosk id: reconnects faster than this get 429
    app["guest_connects"] = LocalLimit(GUEST_CONNECTS)  # per client address, on the public /ws/guest
    app["booking_limits"] = BookingLimits()  # per address: bookings, and lookups of unknown codes

    async def start(app: web.Application) -> None:
        db = await Database.open(config.database_url)
        app["db"] = db
        app["login_throttle"] = LoginThrottle(db.logins)
        app["passwords"] = PasswordWorkers()
        app["bundles"] = BundleLibrary.from_config(config, db.bundles)  # update bundles: checked, kept, served
        await asyncio.to_thread(app["bundles"].clean_up)
        estimator = WaitEstimator(config.default_handling_s)
        ice_servers = IceServers(config.ice_servers, config.turn)
        candidates = CandidateFilter(config.ice_networks, ice_servers.every_url)
        departments = await db.departments()
        for d in departments:
            estimator.seed(d.slug, list(reversed(await db.recent_durations(d.slug))))
        tokens = ResumeTokens(await db.secret("resume_token_key"), config.resume_token_hours * 3600)
        if config.redis_url is not None:  # the public per-address limits hold across leaders (several centrals)
            client, limit_key = _redis_client(app, config), await db.secret("limit_key")
            app["booking_limits"].share(client, limit_key)
            app["home_connects"] = ValkeyLimit(client, "home_connects", HOME_CONNECTS, limit_key)
            app["guest_connects"] = ValkeyLimit(client, "guest_connects", GUEST_CONNECTS, limit_key)
        fleet = FleetRegistry(zone=ZoneInfo(config.timezone))
        fleet.restore(await db.fleet.load(), await db.fleet.alive_until())
        app["fleet_writer"] = FleetWriter(fleet, db.fleet)
        rooms, guest_links = (WaitingRooms(), GuestLinks()) if config.redis_url is None else _redis_state(app, config)
        hub = Hub(rooms=rooms, guest_links=guest_links, estimator=estimator, departments={d.slug: d for d in departments},
                  ice=ice_servers, online_cap=config.online_visits_per_department, record_visit=lambda dept, wait, duration, day: _spawn(
                      app, db.record_visit(dept, day, wait, duration)),
                  record_call_failure=lambda dept, day: _spawn(app, db.record_call_failure(dept, day)),
                  tokens=tokens, resume_grace_s=config.resume_grace_s,
                  call_connect_timeout_s=config.call_connect_timeout_s, relay=SignalingRelay(candidates), fleet=fleet,
                  record_clerk_video=lambda staff_id, seen: _spawn(app, db.staff_browsers.record(staff_id, seen)),
                  bookings=db.bookings)
        if candidates.names_to_resolve:
            app["resolve_turn"] = asyncio.get_running_loop().create_task(candidates.keep_resolving())
        if now is not None:
            hub.now = now
        hub.updates.restore(await db.updates.live_rollout(), await db.updates.statuses())
        app["update_writer"] = UpdateWriter(hub.updates, db.updates)
        app["bundles"].removal_guards.append(rollout_control.removal_guard(app))
        await hub.refresh_bookable()  # kiosks offer "I have an appointment" where a department takes them
        app["hub"] = hub
        if config.redis_url is not None:
            _lead_when_possible(app, hub)
        app["watch_consoles"] = asyncio.get_running_loop().create_task(consoles.watch(app))
        app["watch_kiosks"] = asyncio.get_running_loop().create_task(fleet_settings.watch(app))
        app["write_fleet"] = asyncio.get_running_loop().create_task(app["fleet_writer"].run())
        app["write_updates"] = asyncio.get_running_loop().create_task(app["update_writer"].run())
        app["watch_rollout"] = asyncio.get_running_loop().create_task(rollout_sync.watch(app))
        app["forget_bookings"] = asyncio.get_running_loop().create_task(keep_forgetting(app))
        # A leader's own sockets, and with several centrals those the others relay to it: both live long.
        sockets = app["websockets"] if "remote_peers" not in app else Together(
            app["websockets"], app["remote_peers"].sessions.values())
        app["freeze_sockets"] = asyncio.get_running_loop().create_task(
            keep_freezing(sockets, app["stopping"]))  # central/collector.py

    async def stop(app: web.Application) -> None:
        if "resolve_turn" in app:
            app["resolve_turn"].cancel()
        if "watch_consoles" in app:
            app["watch_consoles"].cancel()
        if "watch_kiosks" in app:
            app["watch_kiosks"].cancel()
        if "watch_rollout" in app:
            app["watch_rollout"].cancel()
        if "forget_bookings" in app:
            app["forget_bookings"].cancel()
        if "freeze_sockets" in app:
            app["freeze_sockets"].cancel()
        await begin_shutdown(app)  # with several centrals, this also hands the lease back
        if "edge" in app:
            app["edge_task"].cancel()
            app["remote_peers"].stop()
            await app["edge"].stop()
        if "redis" in app:
            from central.cluster.valkey_clients import aclose

            app["follow_master"].cancel()
            await aclose(app["redis"], app["redis_subscriber"])
        if "write_fleet" in app:
            app["write_fleet"].cancel()
            await app["fleet_writer"].flush()  # the kiosks' last seen, as the sockets closed
        if "write_updates" in app:
            app["write_updates"].cancel()
            await app["update_writer"].flush()  # the kiosks' last update reports
        if app["background"]:
            await asyncio.wait(app["background"], timeout=5)
        await app["db"].close()
        app["passwords"].close()
        app["bundles"].close()

    app.on_startup.append(start)
    app.on_shutdown.append(stop)

    async def root(request: web.Request) -> web.Response:
        raise web.HTTPFound("/console" if request.get("staff") else "/status")

    app.router.add_get("/", root)
    app.router.add_get("/ws/kiosk", kiosk_socket)
    app.router.add_get("/ws/staff", staff_socket)
    app.router.add_get("/ws/guest", guest_socket)
    enrol_socket.install(app)
    home_socket.install(app)
    app.add_routes(auth.routes())
    app.add_routes(login.routes())
    app.add_routes(console.routes())
    app.add_routes(console_bookings.routes())
    app.add_routes(status.routes())
    app.add_routes(home.routes())
    app.add_routes(booking.routes())
    app.add_routes(booking_view.routes())
    app.add_routes(guest.routes())
    app.add_routes(admin.routes())
    app.add_routes(metrics.routes())
    app.add_routes(cluster_web.routes())
    app.add_routes(bundle_download.routes())
    app.router.add_static("/static", STATIC)
    return app


def _redis_client(app: web.Application, config: Config):
    """The one Redis client of this central (made on first use)."""
    if "redis" not in app:
        from central.cluster import valkey_clients  # only where redis_url is configured

        # Short timeouts for commands: a leader must notice a lost Redis within its lease, not after TCP's
        # minutes. Subscriptions wait for messages as long as there are none: no socket timeout (they wake up on
        # their own). With redis+sentinel:// both follow the master the sentinels name.
        app["redis"], app["redis_subscriber"] = valkey_clients.async_clients(config.redis_url)
        log.info("Valkey/Redis: %s", valkey_clients.describe(config.redis_url))
        app["follow_master"] = asyncio.get_running_loop().create_task(
            valkey_clients.follow_master(app["redis"], app["redis_subscriber"]))
    return app["redis"]


def _redis_state(app: web.Application, config: Config):
    """Several centrals: the Redis client, the lease, and the rooms and guest links written through (fenced by
    the lease)."""
    from central.cluster.lease import Lease
    from central.rooms.redis_guest_links import RedisGuestLinks
    from central.rooms.redis_rooms import RedisRooms

    client = _redis_client(app, config)
    lease = app["lease"] = Lease(client)

    def fence() -> tuple[str, str]:
        return lease.key, lease.value or ""

    def fenced() -> None:
        app["leadership"].lose("another central holds the lease")
    return (RedisRooms(client, config.resume_grace_s, lease=fence, on_fenced=fenced),
            RedisGuestLinks(client, config.resume_grace_s, lease=fence, on_fenced=fenced))


def _lead_when_possible(app: web.Application, hub: Hub) -> None:
    """Stand by until this central holds the lease, then take the rooms over (central/cluster/leadership.py)."""
    from central.cluster.edge import Edge
    from central.cluster.leadership import Leadership
    from central.cluster.remote_peers import RemotePeers

    def lost(why: str) -> None:
        app["lost_lead"].set()  # python -m central serve closes every socket now and exits for systemd to restart
        asyncio.get_running_loop().create_task(begin_shutdown(app))

    # Until it leads, this central relays its WebSockets to the leader (central/cluster/edge.py).
    edge = app["edge"] = Edge(app["redis"], app["redis_subscriber"], app["lease"])
    app["edge_task"] = asyncio.get_running_loop().create_task(edge.run())

    # Once it leads, it serves the sockets the other centrals relay (central/cluster/remote_peers.py).
    remote = app["remote_peers"] = RemotePeers(app, app["redis"], app["redis_subscriber"],
                                               lambda: app["leadership"].leading)

    def take_over() -> int:
        app["edge_task"].cancel()  # closes the sockets it relayed to the old leader (1012): they come back here
        taken = hub.take_over()
        remote.start(app["leadership"].epoch)
        return taken

    config: Config = app["config"]
    app["leadership"] = Leadership(app["lease"], hub.rooms, take_over, lost, redis_url=config.redis_url,
                                   stall_limit_s=config.lease_stall_limit_s, also=[hub.guest_links])
    app["lead"] = asyncio.get_running_loop().create_task(app["leadership"].run())
    app["lead"].add_done_callback(lambda t: t.cancelled() or t.exception() is None or (
        log.error("leading failed", exc_info=t.exception()), lost("leading failed")))


RETRY_AFTER_S = 5  # central restarts in about a second or two; kiosks back off on their own anyway


@web.middleware
async def refuse_while_stopping(request: web.Request, handler):
    """During shutdown every request gets an answer: 503, come back shortly."""
    if request.app["stopping"].is_set():
        return web.Response(status=503, headers={"Retry-After": str(RETRY_AFTER_S)},
                            text="Amtsklingel central is restarting; try again in a few seconds.\n")
    return await handler(request)


async def begin_shutdown(app: web.Application) -> None:
    """Stop without ending visits: refuse new requests, tell the hub, and close every WebSocket
    with 1012 (Service Restart) at once, so kiosks reconnect and resume with their tokens as
    soon as central is back instead of waiting for a heartbeat to time out."""
    if app["stopping"].is_set():
        return
    app["stopping"].set()
    if "hub" in app:
        app["hub"].stop()
    closing = [asyncio.ensure_future(ws.close(code=WSCloseCode.SERVICE_RESTART, message=b"central restarting"))
               for ws in list(app["websockets"])]
    if "leadership" in app:
        # Several centrals: the rooms no longer change (the hub stopped), so the last changes are written
        # and the lease handed back now, while the sockets close: a standby takes over at once.
        app["lead"].cancel()
        await app["leadership"].stop()
    if closing:
        await asyncio.wait(closing, timeout=SOCKET_CLOSE_S)


SOCKET_CLOSE_S = 2.0  # a peer that does not answer the close handshake by then is cut off by the runner


def _spawn(app: web.Application, coro) -> None:
    """Run a database write in the background, keeping a reference so it is not lost."""
    task = asyncio.get_running_loop().create_task(coro)
    app["background"].add(task)
    task.add_done_callback(app["background"].discard)
    task.add_done_callback(lambda t: t.cancelled() or t.exception() is None or
                           log.error("background write failed", exc_info=t.exception()))
