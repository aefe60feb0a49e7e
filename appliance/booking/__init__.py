"""A booked appointment at the kiosk: the booking's QR code read from the camera, on the unit.

qr_reader.py decodes QR codes in a camera picture (zxing-cpp, imported when first needed);
scanner.py feeds it the camera's frames while the citizen holds their code up. Nothing of a
picture leaves the unit: only the booking code does, to central (protocol/booking_lookup.py).
"""
