"""Open sockets' objects are kept out of the garbage collector's full collections (central/collector.py),
and given back once enough of those sockets have closed, so closed ones caught in reference cycles are freed."""
from __future__ import annotations

import gc
import weakref

import pytest

from central.collector import MIN_GONE, MIN_NEW, SocketFreezer, Together


class Socket:
    """Stands in for a WebSocketResponse: in a reference cycle with its handler's state, like aiohttp's."""

    def __init__(self) -> None:
        self.state = {"socket": self}


def in_collections(objects) -> int:
    """How many of ``objects`` a collection would look at (frozen ones are not in any generation)."""
    tracked = {id(o) for o in gc.get_objects()}
    return sum(id(o) in tracked for o in objects)


@pytest.fixture
def sockets():
    gc.unfreeze()  # a central started by an earlier test in this process may have frozen its own
    gc.collect()
    open_sockets: set[Socket] = set()
    yield open_sockets
    open_sockets.clear()
    gc.unfreeze()
    gc.collect()


def test_sockets_that_stay_open_are_left_out_of_collections(sockets):
    freezer = SocketFreezer(sockets)
    sockets.update(Socket() for _ in range(MIN_NEW - 1))
    assert freezer.review() is None  # too few to be worth it
    assert in_collections(sockets) == MIN_NEW - 1
    sockets.add(Socket())
    assert "50 new sockets frozen" in freezer.review()
    assert in_collections(sockets) == 0
    assert in_collections(ws.state for ws in sockets) == 0
    assert freezer.review() is None  # nothing new


def test_closed_sockets_in_cycles_are_freed_once_a_quarter_of_the_frozen_closed(sockets):
    freezer = SocketFreezer(sockets)
    sockets.update(Socket() for _ in range(4 * MIN_GONE))
    freezer.review()
    closing = [sockets.pop() for _ in range(MIN_GONE - 1)]
    gone = [weakref.ref(ws) for ws in closing]
    del closing
    assert freezer.review() is None
    gc.collect()
    assert all(ref() is not None for ref in gone)  # in a cycle and frozen: not freed yet
    gone.append(weakref.ref(sockets.pop()))  # the 50th of 200
    assert "50 of 200 frozen sockets had closed" in freezer.review()
    assert all(ref() is None for ref in gone)
    assert in_collections(sockets) == 0 and len(sockets) == 150  # the open ones frozen again


def test_a_leaders_own_sockets_and_those_relayed_to_it_are_counted_together(sockets):
    relayed: dict[str, Socket] = {}
    freezer = SocketFreezer(Together(sockets, relayed.values()))
    sockets.update(Socket() for _ in range(MIN_NEW // 2))
    relayed.update((str(n), Socket()) for n in range(MIN_NEW - MIN_NEW // 2))
    assert "50 new sockets frozen" in freezer.review()  # neither kind alone would have been enough
    assert in_collections([*sockets, *relayed.values()]) == 0
