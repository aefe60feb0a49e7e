"""The real hardware backend (``pi``): picamera2, ALSA, gpiozero's GPIO chip.

Importing these modules is safe anywhere; the hardware libraries are imported
only when a device is opened.
"""
