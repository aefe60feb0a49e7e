"""``python -m appliance.sim --central URL --token TOKEN``: a kiosk on the keyboard.

Keys (then Enter): a number picks a department and joins its waiting room,
``c`` cancels the wait, ``h`` hangs up, ``q`` quits.
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from appliance.sim.kiosk import SimulatedKiosk


async def run(args: argparse.Namespace) -> None:
    kiosk = SimulatedKiosk(args.central, args.token)
    welcome = await kiosk.start()
    departments = welcome.departments
    print(f"Simulated kiosk '{welcome.kiosk_location}' connected. Departments:")
    for i, d in enumerate(departments, 1):
        print(f"  {i}) {d.name} ({'open' if d.open else 'closed'})")
    print("Type a number + Enter to join that waiting room; c = cancel, h = hang up, q = quit.")
    if args.join:
        await kiosk.request(args.join)

    async def report() -> None:
        while True:
            event = await kiosk.events.get()
            print(f"[kiosk] {event.type}: " + ", ".join(f"{k}={v}" for k, v in event.model_dump().items()
                                                        if k in ("position", "expected_wait_s", "reason", "text",
                                                                 "department")), flush=True)
            if event.type == "visit.ended" and args.join:
                await asyncio.sleep(3)
                await kiosk.request(args.join)  # keep the demo's waiting room populated

    reporter = asyncio.get_running_loop().create_task(report())
    loop = asyncio.get_running_loop()
    try:
        while True:
            line = await loop.run_in_executor(None, sys.stdin.readline)
            if not line:  # no terminal (e.g. started in the background): just keep serving
                await asyncio.Event().wait()
            key = line.strip().lower()
            if key == "q":
                break
            if key == "c":
                await kiosk.cancel()
            elif key == "h":
                await kiosk.hang_up()
            elif key.isdigit() and 1 <= int(key) <= len(departments):
                await kiosk.request(departments[int(key) - 1].slug)
    finally:
        reporter.cancel()
        await kiosk.stop()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m appliance.sim")
    parser.add_argument("--central", required=True, help="central's base URL, e.g. http://127.0.0.1:8080")
    parser.add_argument("--token", required=True, help="the kiosk token created in central's admin page")
    parser.add_argument("--join", help="join this department's waiting room at once (and again after each visit)")
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
