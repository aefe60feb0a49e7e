"""What the rest of the appliance may ask of its hardware.

Small structural protocols: the controller and the call code depend on these,
never on picamera2, ALSA or gpiozero.  ``appliance.hardware.select`` hands out
objects that satisfy them, real (``pi``) or fake.
"""
from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Literal, Protocol, runtime_checkable

import av
from aiortc.mediastreams import MediaStreamTrack

from protocol.fleet import Throttling

# LED modes of the call button, as the citizen sees them:
#   idle     slow pulse  - "press me"
#   waiting  steady, dim - "you are queued"
#   in_call  fully on    - "you are connected"
#   fault    fast blink  - "out of order, ask the staff"
#   off      dark        - e.g. outside office hours or shutting down
LedMode = Literal["idle", "waiting", "in_call", "fault", "off"]
LED_MODES: tuple[LedMode, ...] = ("idle", "waiting", "in_call", "fault", "off")

# A press held this long counts as long press (e.g. "cancel / hang up").
LONG_PRESS_SECONDS = 1.0
# Held this long on the idle screen, the press starts the self-test for the person installing the
# unit: long enough that no citizen does it by chance, short enough to find by trying.
SELFTEST_HOLD_SECONDS = 5.0

# Callbacks may be plain functions or coroutine functions; they always run in
# the appliance's asyncio loop, never in a hardware thread.
ButtonCallback = Callable[[], None] | Callable[[], Awaitable[None]]
FarEndHook = Callable[[av.AudioFrame], None]


@runtime_checkable
class Camera(Protocol):
    """The kiosk camera: the Pi camera, a USB (UVC) camera or the test pattern.

    ``track()`` starts capturing and returns a fresh track for one call; the
    previous track (if any) ends.  When ``encoded`` is true the track yields
    H.264 ``av.Packet``s (Annex B, time base 1/90000) that aiortc packetises
    without re-encoding, so the peer must negotiate H.264 (see
    ``appliance.hardware.encoded.h264_codecs``); otherwise it yields
    ``av.VideoFrame``s.  Read ``encoded`` after ``track()``: a camera whose
    hardware encoder fails to start falls back to frames.

    ``track(encoded=...)``: ``None`` is the camera's preference (packets where
    it can pass H.264 through); ``False`` asks for frames, for a software
    encoder when the clerk's browser cannot take H.264 (the VP8 fallback);
    ``True`` asks for packets and raises ``CameraError`` where there are none.
    ``name`` says which camera this is, for IT and the installer
    (e.g. "Pi camera imx708", "USB Logitech C920 (H.264 1280x720 30 fps)").
    A camera that disappears raises ``CameraError`` from its track.
    """

    encoded: bool
    name: str

    def track(self, *, encoded: bool | None = None) -> MediaStreamTrack: ...

    def close(self) -> None: ...


@runtime_checkable
class Microphone(Protocol):
    """The kiosk microphone: ``track()`` yields 20 ms mono s16 48 kHz ``av.AudioFrame``s.

    ``name`` names the device for IT (card and ALSA device, e.g. "USB speakerphone
    (plughw:CARD=kioskaudio)"). A device that disappears raises ``AudioDeviceError``
    (its track ends); the next ``track()`` opens it afresh once it is back.
    ``present()`` is false while it is unplugged; the kiosk polls it every ~2 s
    (appliance/fleet/watch.py) to notice that also between calls. A camera may
    offer the same ``present()``. One with an echo canceller may offer
    ``on_echo_behind``: set by the appliance, called with the ms of sound skipped
    each time the canceller falls behind (the unit's health counts ``echo_behind``).
    """

    name: str

    def track(self) -> MediaStreamTrack: ...

    def present(self) -> bool: ...

    def set_gain_db(self, gain_db: int) -> None:
        """Microphone gain from central's settings (-20..20 dB), also during a call."""

    def close(self) -> None: ...


@runtime_checkable
class Speaker(Protocol):
    """The kiosk loudspeaker.

    ``play()`` accepts any ``av.AudioFrame`` (the clerk's decoded Opus is
    stereo 48 kHz) and returns once the audio is handed to the device.
    ``far_end``, when set, is called with every frame as it is played
    (48 kHz mono s16): the echo canceller needs exactly what left the speaker.
    ``play()`` raises ``AudioDeviceError`` once the device is gone; ``present()``
    as the microphone's; a speaker may offer ``reopen()``, which the kiosk calls
    once the device is back (``AudioDeviceError`` if it still cannot be opened).
    """

    far_end: FarEndHook | None
    name: str  # as the microphone's

    async def play(self, frame: av.AudioFrame) -> None: ...

    def present(self) -> bool: ...

    def set_volume(self, volume_pct: int) -> None:
        """Speaker volume from central's settings (0-100 %), also during a call."""

    def close(self) -> None: ...


@runtime_checkable
class CallButton(Protocol):
    """The big call button with its LED.

    ``on_short_press`` fires on release of a press shorter than the long-press
    threshold; ``on_long_press`` fires once while the button is still held,
    when the threshold is reached (and the later release fires nothing).
    ``on_selftest_hold`` fires once, later, if the same press is still held at
    the self-test threshold (``SELFTEST_HOLD_SECONDS``).
    """

    on_short_press: ButtonCallback | None
    on_long_press: ButtonCallback | None
    on_selftest_hold: ButtonCallback | None

    def led(self, mode: LedMode) -> None: ...

    def close(self) -> None: ...


@runtime_checkable
class Unit(Protocol):
    """The unit itself: who it is (for enrolment) and how it is (for the health report).

    ``serial`` and ``model`` are read when first asked and raise ``UnitError`` saying what is
    missing; the readings return ``None`` / no flags where the machine does not report them.
    """

    serial: str
    model: str

    def cpu_temp_c(self) -> float | None: ...

    def throttling(self) -> list[Throttling]: ...

    def throttling_since_boot(self) -> list[Throttling]: ...

    def close(self) -> None: ...


@runtime_checkable
class Display(Protocol):
    """The screen: brightness (0-100 %) and power; a unit without a backlight ignores both."""

    def set_brightness(self, pct: int) -> None: ...

    def set_power(self, on: bool) -> None: ...

    def close(self) -> None: ...
