"""The hub's consoles by department (central/live/consoles.py): a visit is told to, and its wait counts,
exactly the consoles of the clerks serving its department, however consoles come, go and change."""
from __future__ import annotations

import pytest

from central.live.consoles import StaffPeers
from central.live.peers import StaffPeer
from central.storage.database import Staff


def console(staff_id: int, *departments: str) -> StaffPeer:
    return StaffPeer(Staff(staff_id, f"clerk{staff_id}", f"Clerk {staff_id}", "clerk", True, frozenset(departments)),
                     link=None)


def serving(peers: StaffPeers, department: str) -> set[int]:
    return {p.staff.id for p in peers.serving(department)}


def test_consoles_are_found_by_the_departments_their_clerks_serve():
    peers = StaffPeers()
    peers[1] = console(1, "a", "b")
    peers[2] = console(2, "b")
    assert serving(peers, "a") == {1} and serving(peers, "b") == {1, 2} and serving(peers, "c") == set()
    assert list(peers) == [1, 2] and peers[2].staff.departments == {"b"}


def test_a_console_replaced_left_or_changed_is_found_where_it_is_now():
    peers = StaffPeers()
    peers[1] = console(1, "a", "b")
    peers[1] = console(1, "c")            # the clerk's second window, after a change of departments
    assert serving(peers, "a") == serving(peers, "b") == set() and serving(peers, "c") == {1}

    peer = peers[1]
    before, peer.staff = peer.staff.departments, console(1, "a").staff   # the admin gives other departments
    peers.departments_changed(peer, before)
    assert serving(peers, "a") == {1} and serving(peers, "c") == set()

    del peers[1]
    assert serving(peers, "a") == set() and 1 not in peers
    peers[2] = console(2, "a")
    assert peers.pop(2) is not None and peers.pop(2, None) is None and serving(peers, "a") == set()


def test_ways_around_the_index_are_refused():
    peers = StaffPeers()
    with pytest.raises(TypeError, match="one console at a time"):
        peers.update({1: console(1, "a")})
    with pytest.raises(TypeError):
        peers.setdefault(1, console(1, "a"))
    assert serving(peers, "a") == set()
