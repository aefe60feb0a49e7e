"""Waiting rooms: who waits where, in which order, and who talks to whom.

Visits live only in memory (or, with several centrals, in Redis with an expiry):
they are never written to the database, so ending a visit deletes it.
"""
from central.rooms.interface import Rooms
from central.rooms.visit import Visit, VisitState
from central.rooms.waiting_rooms import WaitingRooms

__all__ = ["Rooms", "Visit", "VisitState", "WaitingRooms"]
