"""Waiting in tests for state that offers nothing to await: bounded polling with a message on failure.

The appliance's controller view and central's hub tables are plain attributes that change as messages arrive;
they have no event a test could wait on, so tests look again every ``every`` seconds until it holds or the time
is up. Where the test owns the thing that changes (a fake central's inbox), it sets an ``asyncio.Event``
instead of being polled.
"""
from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


async def until(condition: Callable[[], T | Awaitable[T]], seconds: float = 10.0, every: float = 0.05,
                what: str = "") -> T:
    """Returns the first truthy result of ``condition()`` (awaited when it is a coroutine: a question to a
    server); raises ``TimeoutError`` after ``seconds``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while True:
        result = condition()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result
        if loop.time() >= deadline:
            raise TimeoutError(f"{what or 'the condition'} did not hold within {seconds} s; last: {result!r}")
        await asyncio.sleep(every)


async def view_until(unit, predicate, seconds: float = 15.0):
    """The appliance ``unit``'s controller view, once ``predicate(view)`` holds."""
    try:
        await until(lambda: predicate(unit.controller.view), seconds)
    except TimeoutError:
        raise TimeoutError(f"the kiosk view did not reach the state the test waits for within {seconds} s; "
                           f"it is {unit.controller.view}") from None
    return unit.controller.view
