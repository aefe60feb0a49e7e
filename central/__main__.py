"""Command line: ``python -m central serve|create-admin|create-kiosk|unlock|demo-data|bundles|rollout``."""
from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import logging
import signal
import sys
from pathlib import Path

from aiohttp import web

from central import passwords
from central.app import begin_shutdown, create_app
from central.config import Config, ConfigError
from central.log_thread import logging_in_a_thread
from central.seed import seed_demo
from central.storage import Database
from central.updates import bundle_commands, rollout_commands
from central.web.throttle import LoginThrottle

DEFAULT_CONFIG = Path("/etc/amtsklingel/central.toml")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m central", description="Amtsklingel central server")
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help=f"settings file (default {DEFAULT_CONFIG})")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="run the server")
    admin = sub.add_parser("create-admin", help="create an administrator (asks for the password)")
    admin.add_argument("username")
    kiosk = sub.add_parser("create-kiosk", help="register a kiosk and print its secret token once")
    kiosk.add_argument("location")
    unlock = sub.add_parser("unlock", help="lift the wait that failed logins put on a staff member's account")
    unlock.add_argument("username")
    sub.add_parser("demo-data", help="create demo departments, staff and a kiosk; prints credentials as JSON")
    bundles = sub.add_parser("bundles", help="update bundles: add (checked like an upload), list, remove")
    bundle_sub = bundles.add_subparsers(dest="bundle_command", required=True)
    add = bundle_sub.add_parser("add", help="check a RAUC bundle (signature, compatible, hash tree) and keep it")
    add.add_argument("file", type=Path)
    bundle_sub.add_parser("list", help="the bundles central holds, newest first")
    remove = bundle_sub.add_parser("remove", help="delete a bundle and its file")
    remove.add_argument("bundle_id", type=int)
    rollout_commands.add_arguments(sub)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        config = Config.from_file(args.config)
    except ConfigError as exc:
        print(f"amtsklingel central: {exc}", file=sys.stderr)
        return 2
    if args.command == "serve":
        with logging_in_a_thread():
            return asyncio.run(_serve(config))
    return asyncio.run(_admin_command(config, args))


async def _serve(config: Config) -> int:
    """Run until SIGTERM or SIGINT, then stop at once without ending visits (see begin_shutdown):
    kiosks keep their signed resume tokens and put their visits back when central returns.
    With several centrals, a leader that lost its lease stops the same way and exits with
    EXIT_LOST_LEAD, for systemd to start it again as a standby."""
    app = create_app(config)
    # No access log: it would carry the addresses of citizens' kiosks.
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=SHUTDOWN_TIMEOUT_S)
    await runner.setup()
    try:
        await web.TCPSite(runner, config.host, config.port).start()
        logging.getLogger("central").info("central serving on %s:%d", config.host, config.port)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        lost = loop.create_task(app["lost_lead"].wait())
        await asyncio.wait([loop.create_task(stop.wait()), lost], return_when=asyncio.FIRST_COMPLETED)
        await begin_shutdown(app)  # while still listening: requests now get 503, sockets close with 1012
    finally:
        await runner.cleanup()
    if app["lost_lead"].is_set():
        logging.getLogger("central").error("central lost the lead to another instance; exiting to start again "
                                           "as a standby")
        return EXIT_LOST_LEAD
    return 0


EXIT_LOST_LEAD = 75  # EX_TEMPFAIL: systemd's Restart= starts a fresh standby


SHUTDOWN_TIMEOUT_S = 3.0  # handlers still running after the sockets were closed get this long


async def _admin_command(config: Config, args: argparse.Namespace) -> int:
    db = await Database.open(config.database_url)
    try:
        if args.command == "create-admin":
            password = getpass.getpass("Password (at least 10 characters): ")
            await db.create_staff(args.username, args.username, passwords.hash_password(password), "admin", [])
            print(f"administrator {args.username} created; log in at /login")
        elif args.command == "create-kiosk":
            kid, token = await db.create_kiosk(args.location)
            print(f"kiosk {kid} ({args.location}) created. Its token, shown only now:\n{token}")
        elif args.command == "unlock":
            if args.username not in {m.username for m in await db.all_staff()}:
                print(f"amtsklingel central: there is no staff member {args.username!r} (usernames are "
                      "case-sensitive; the admin page lists them)", file=sys.stderr)
                return 1
            await LoginThrottle(db.logins).unlock(args.username)
            print(f"{args.username} can log in again now")
        elif args.command == "demo-data":
            print(json.dumps(await seed_demo(db)))
        elif args.command == "bundles":
            return await bundle_commands.run(config, db, args)
        elif args.command == "rollout":
            return await rollout_commands.run(config, db, args)
    finally:
        await db.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
