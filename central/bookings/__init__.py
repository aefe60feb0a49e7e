"""Booked appointments: codes, the slot grid of a department, and the rules for checking in.

Storage is in central/storage/bookings.py; the public pages in central/web/booking*.py.
"""
