"""One contract, every implementation of the waiting rooms (central/rooms/interface.py).

Each test runs against the in-memory rooms (the embedded default) and against the rooms written
through to a real Redis server started for the test run (tests/servers.py). For Redis, a second
instance that loads what the first wrote must see the same rooms in the same order: that is what a
standby central does when it takes over (docs/decisions/0008-several-centrals.md).
"""
from __future__ import annotations

import pytest

from central.rooms import Visit, VisitState
from protocol.errors import ErrorCode, ProtocolError
from tests.central.rooms_fixtures import IMPLEMENTATIONS, NOW, arrived, open_rooms


@pytest.fixture(params=IMPLEMENTATIONS)
async def rooms(request):
    async with open_rooms(request.param, request) as rooms:
        yield rooms


def visit(kiosk_id: int | None, minutes_ago: float, department: str = "buergerbuero", **fields) -> Visit:
    return Visit(kiosk_id=kiosk_id, kiosk_location=f"Ort {kiosk_id}", department=department, language="de",
                 **arrived(minutes_ago), **fields)


def ids(visits: list[Visit]) -> list[str]:
    return [v.id for v in visits]


async def test_visits_wait_in_order_of_arrival_whatever_order_they_were_added(rooms):
    late, early, middle = visit(1, 1), visit(2, 30), visit(3, 10)
    for v in (late, early, middle):
        rooms.add(v)
    assert ids(rooms.waiting("buergerbuero")) == ids([early, middle, late])
    assert [rooms.position(v) for v in (early, middle, late)] == [1, 2, 3]
    assert len(rooms) == 3 and set(ids(rooms.all())) == set(ids([early, middle, late]))
    assert rooms.waiting("standesamt") == []
    await rooms.check_stored()


async def test_a_booked_visit_goes_ahead_once_its_slot_has_begun(rooms):
    walk_in = visit(1, 20)
    booked_now = visit(2, 5, slot_start=NOW - 60, booking="ABCD-1234")
    booked_later = visit(3, 25, slot_start=NOW + 600)  # early for its slot: waits among the walk-ins
    for v in (walk_in, booked_now, booked_later):
        rooms.add(v)
    assert ids(rooms.waiting("buergerbuero")) == ids([booked_now, booked_later, walk_in])
    assert rooms.position(booked_now) == 1 and rooms.position(walk_in) == 3
    await rooms.check_stored()


async def test_a_visit_is_picked_up_once_by_id_or_as_the_next(rooms):
    first, second = visit(1, 10), visit(2, 5)
    rooms.add(first)
    rooms.add(second)
    await rooms.check_stored()
    picked = rooms.pick_up(7, department="buergerbuero")
    assert picked is first and first.state is VisitState.IN_CALL and first.clerk_id == 7
    assert first.first_wait_s is not None and first.picked_up_at is not None
    with pytest.raises(ProtocolError) as again:
        rooms.pick_up(8, visit_id=first.id)
    assert again.value.code is ErrorCode.ALREADY_TAKEN
    with pytest.raises(ProtocolError) as elsewhere:
        rooms.pick_up(8, visit_id=second.id, department="standesamt")
    assert elsewhere.value.code is ErrorCode.FORBIDDEN
    assert rooms.pick_up(8, visit_id=second.id) is second
    with pytest.raises(ProtocolError) as empty:
        rooms.pick_up(9, department="buergerbuero")
    assert empty.value.code is ErrorCode.QUEUE_EMPTY
    assert rooms.waiting("buergerbuero") == [] and len(rooms) == 2  # in calls, still visits
    await rooms.check_stored()


async def test_a_transferred_visit_lands_where_its_arrival_earns(rooms):
    there_before, there_after = visit(1, 40, "standesamt"), visit(2, 5, "standesamt")
    moving = visit(3, 20)
    for v in (there_before, there_after, moving):
        rooms.add(v)
    rooms.pick_up(7, visit_id=moving.id)
    await rooms.check_stored()
    rooms.transfer(moving, "standesamt")
    assert moving.state is VisitState.WAITING and moving.clerk_id is None and moving.department == "standesamt"
    assert ids(rooms.waiting("standesamt")) == ids([there_before, moving, there_after])
    assert rooms.waiting("buergerbuero") == []
    await rooms.check_stored()


async def test_a_removed_visit_is_gone_and_the_others_move_up(rooms):
    first, second, third = visit(1, 30), visit(2, 20), visit(3, 10)
    for v in (first, second, third):
        rooms.add(v)
    rooms.pick_up(7, visit_id=third.id)
    await rooms.check_stored()
    rooms.remove(first)
    rooms.remove(third)  # a call ends
    assert rooms.get(first.id) is None and rooms.get(third.id) is None
    assert ids(rooms.waiting("buergerbuero")) == [second.id] and rooms.position(second) == 1
    assert ids(rooms.all()) == [second.id]
    await rooms.check_stored()


async def test_a_kiosks_visit_is_found_by_its_kiosk(rooms):
    mine, from_home = visit(4, 3), visit(None, 2, origin="online", home_id="h-1")
    rooms.add(mine)
    rooms.add(from_home)
    assert rooms.of_kiosk(4) is mine and rooms.of_kiosk(5) is None
    rooms.pick_up(7, visit_id=mine.id)
    assert rooms.of_kiosk(4) is mine  # in a call, still the kiosk's
    rooms.transfer(mine, "standesamt")
    assert rooms.of_kiosk(4) is mine  # waiting elsewhere, still the kiosk's
    rooms.remove(mine)
    assert rooms.of_kiosk(4) is None
    again = visit(4, 1)
    rooms.add(again)
    rooms.remove(from_home)
    assert rooms.of_kiosk(4) is again   # the kiosk's next visit
    await rooms.check_stored()
