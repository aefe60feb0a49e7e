"""Amtsklingel appliance (Raspberry Pi kiosk) code."""
