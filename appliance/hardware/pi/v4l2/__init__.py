"""USB (UVC) cameras and other V4L2 capture devices, next to the Pi camera's picamera2.

``devices`` describes what a device offers (parsed from ``v4l2-ctl --list-formats-ext`` text
or read with ioctls), ``choose`` picks the device and the format from that description
(pure functions, tested on recordings of real webcams), ``ioctls``/``capture`` talk to the
kernel, ``camera`` is the appliance's :class:`~appliance.hardware.interfaces.Camera`.

Nothing here needs a V4L2 device to import; the device is opened only by ``camera``.
"""
