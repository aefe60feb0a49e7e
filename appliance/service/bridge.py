"""Hands the controller's views to the page (Flask threads) and the page's actions back.

The controller lives on the asyncio loop; Flask serves each request on its own
thread. Views go out through thread-safe queues, actions come in through
``loop.call_soon_threadsafe`` — neither side ever touches the other's objects.
"""
from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable
from typing import Any

from appliance.controller.view import View
from protocol.errors import AmtsklingelError

ACTIONS = {"press", "long_press", "choose", "confirm", "cancel", "hangup", "language", "selftest",
           "booking", "booking_type", "booking_scan", "booking_code"}  # the appointment screen's (controller/booking.py)
SUBSCRIBER_BACKLOG = 50  # views; a page that stops reading misses old views, never the newest


class UnknownAction(AmtsklingelError, ValueError):
    """The page sent an action the controller does not know (the page checks first; this is the backstop)."""


class ViewBridge:
    def __init__(self, loop: asyncio.AbstractEventLoop, post: Callable[[str, Any], None]):
        self._loop, self._post = loop, post
        self._lock = threading.Lock()
        self._subscribers: set[queue.Queue] = set()
        self._current: dict = View().to_json()

    # -- loop side --------------------------------------------------------------
    def publish(self, view: View) -> None:
        data = view.to_json()
        with self._lock:
            self._current = data
            subscribers = list(self._subscribers)
        for q in subscribers:
            try:
                q.put_nowait(data)
            except queue.Full:
                try:
                    q.get_nowait()
                except queue.Empty:
                    pass
                q.put_nowait(data)

    # -- Flask side -------------------------------------------------------------
    def current_view(self) -> dict:
        with self._lock:
            return self._current

    def subscribe(self) -> queue.Queue:
        q: queue.Queue = queue.Queue(SUBSCRIBER_BACKLOG)
        with self._lock:
            self._subscribers.add(q)
        return q

    def unsubscribe(self, q: queue.Queue) -> None:
        with self._lock:
            self._subscribers.discard(q)

    def action(self, name: str, value: str | None = None) -> None:
        if name not in ACTIONS:
            raise UnknownAction(f"unknown action {name!r}; known: {', '.join(sorted(ACTIONS))}")
        self._loop.call_soon_threadsafe(self._post, name, value)
