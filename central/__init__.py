"""Amtsklingel central server: waiting rooms, staff console, signaling."""
