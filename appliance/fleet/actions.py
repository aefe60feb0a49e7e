"""What central asks the kiosk to do (``kiosk.action``): run the self-test, restart the appliance
service, reboot the unit. Each is answered with ``kiosk.action.result``.

While a citizen waits or talks to a clerk, an action is refused with ``busy`` unless central says
``force`` (city IT confirmed it on the fleet page): then the visit ends first, as if the citizen had
left, so central and the clerk know at once.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from appliance.service.power import PowerError
from protocol import fleet as f
from protocol import messages as m

log = logging.getLogger(__name__)

# Time for the answer (and a forced visit's end) to reach central before the process goes away.
FAREWELL_S = 1.0


class Actions:
    def __init__(self, *, controller, send: Callable[[m.Message], Awaitable[None]],  # noqa: ANN001 - Controller
                 power, restart: Callable[[], None]) -> None:  # noqa: ANN001 - SystemdPower | FakePower
        self.controller, self._send, self.power, self.restart = controller, send, power, restart
        self.done: list[tuple[str, str]] = []  # (action, outcome): what this process answered, for tests
        self._tasks: set[asyncio.Task] = set()

    async def run(self, msg: f.KioskAction) -> None:
        controller = self.controller
        if controller.busy and not msg.force:
            await self._answer(msg, "busy")
            return
        if controller.busy:
            log.warning("central forced %s during a visit; ending the visit", msg.action)
            await controller.interrupt_visit()
        if msg.action == "selftest":
            if controller.selftest is None:
                await self._answer(msg, "failed")
                return
            controller.post("selftest", "central")
            await self._answer(msg, "started")
        elif msg.action == "restart":
            await self._answer(msg, "started")
            log.warning("restarting the appliance service as central asked")
            asyncio.get_running_loop().call_later(FAREWELL_S, self.restart)
        else:
            await self._answer(msg, "started")
            task = asyncio.get_running_loop().create_task(self._reboot(msg))
            self._tasks.add(task)  # held until done: the loop keeps only weak references
            task.add_done_callback(self._tasks.discard)

    async def _reboot(self, msg: f.KioskAction) -> None:
        await asyncio.sleep(FAREWELL_S)
        try:
            await self.power.reboot()
        except PowerError as exc:
            log.error("%s", exc)
            await self._answer(msg, "failed")

    async def _answer(self, msg: f.KioskAction, outcome: str) -> None:
        self.done.append((msg.action, outcome))
        await self._send(f.ActionResult(type="kiosk.action.result", action_id=msg.action_id, outcome=outcome))
