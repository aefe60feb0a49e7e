"""Application factory: ``create_app(config)`` wires storage, waiting rooms, hub and pages."""
from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable
from pathlib import Path

from aiohttp import web

from central import logfilter
from central.config import Config
from central.live.candidates import CandidateFilter
from central.live.hub import Hub
from central.live.relay import SignalingRelay
from central.live.sockets import kiosk_socket, staff_socket
from central.passwords import PasswordWorkers
from central.rooms import WaitingRooms
from central.rooms.estimate import WaitEstimator
from central.storage import Database
from central.web import admin, auth, console, login, status
from central.web.throttle import LoginThrottle

log = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"


def create_app(config: Config, *, now: Callable[[], dt.datetime] | None = None) -> web.Application:
    """Build central. ``now`` replaces the clock in tests of office hours."""
    logfilter.install()  # no client address in the log, whoever configured the handlers
    app = web.Application(middlewares=[auth.security_headers, auth.session_middleware],
                          client_max_size=256 * 1024)
    app["config"] = config
    app["background"] = set()

    async def start(app: web.Application) -> None:
        db = await Database.open(config.database_url)
        app["db"] = db
        app["login_throttle"] = LoginThrottle(db.logins)
        app["passwords"] = PasswordWorkers()
        estimator = WaitEstimator(config.default_handling_s)
        candidates = CandidateFilter(config.ice_networks, config.ice_servers)
        departments = await db.departments()
        for d in departments:
            estimator.seed(d.slug, list(reversed(await db.recent_durations(d.slug))))
        hub = Hub(rooms=WaitingRooms(), estimator=estimator, departments={d.slug: d for d in departments},
                  ice_servers=list(config.ice_servers), record_visit=lambda dept, wait, duration, day: _spawn(
                      app, db.record_visit(dept, day, wait, duration)),
                  resume_grace_s=config.resume_grace_s, relay=SignalingRelay(candidates))
        if candidates.names_to_resolve:
            app["resolve_turn"] = asyncio.get_running_loop().create_task(candidates.keep_resolving())
        if now is not None:
            hub.now = now
        app["hub"] = hub

    async def stop(app: web.Application) -> None:
        if "resolve_turn" in app:
            app["resolve_turn"].cancel()
        app["hub"].end_all()
        if app["background"]:
            await asyncio.wait(app["background"], timeout=5)
        await app["db"].close()
        app["passwords"].close()

    app.on_startup.append(start)
    app.on_shutdown.append(stop)

    async def root(request: web.Request) -> web.Response:
        raise web.HTTPFound("/console" if request.get("staff") else "/status")

    app.router.add_get("/", root)
    app.router.add_get("/ws/kiosk", kiosk_socket)
    app.router.add_get("/ws/staff", staff_socket)
    app.add_routes(auth.routes())
    app.add_routes(login.routes())
    app.add_routes(console.routes())
    app.add_routes(status.routes())
    app.add_routes(admin.routes())
    app.router.add_static("/static", STATIC)
    return app


def _spawn(app: web.Application, coro) -> None:
    """Run a database write in the background, keeping a reference so it is not lost."""
    task = asyncio.get_running_loop().create_task(coro)
    app["background"].add(task)
    task.add_done_callback(app["background"].discard)
    task.add_done_callback(lambda t: t.cancelled() or t.exception() is None or
                           log.error("background write failed", exc_info=t.exception()))
