"""A simulated kiosk: the real signaling and aiortc call path with fake camera and microphone.

Used by ``./build.sh demo`` (driven from the keyboard) and by end-to-end tests
(driven by the test). The full appliance with kiosk page and GPIO builds on it.
"""
