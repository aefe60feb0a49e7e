"""The call button and its LED, on gpiozero.

One implementation for the Pi and for tests: only the pin factory differs
(gpiozero's lgpio factory on the Pi, ``MockFactory(pin_class=MockPWMPin)`` in
tests and the demo).  The factory is passed in, never taken from gpiozero's
class-level default, so two buttons in one process cannot share hidden state.

Wiring: the button pulls its GPIO to ground (internal pull-up), the LED sits on a
PWM-capable GPIO through a resistor.
"""
from __future__ import annotations

import asyncio
import inspect
import logging
import threading
import time

from gpiozero import PWMLED, Button

from appliance.hardware.errors import DeviceUsageError, HardwareError
from appliance.hardware.interfaces import LED_MODES, LONG_PRESS_SECONDS, SELFTEST_HOLD_SECONDS, ButtonCallback, LedMode

log = logging.getLogger(__name__)

BOUNCE_SECONDS = 0.05
# Mode -> how the LED shows it.  "waiting" is steady but dim so a citizen can
# tell it apart from "in_call" (fully on) without reading the screen.
IDLE_FADE_SECONDS = 1.5
WAITING_LEVEL = 0.3
FAULT_BLINK_SECONDS = 0.1


class GpioCallButton:
    """The call button (see :class:`appliance.hardware.interfaces.CallButton`).

    gpiozero reports edges on its own threads (the pin driver's callback
    thread, the hold timer thread); the callbacks are handed to ``loop`` with
    ``call_soon_threadsafe`` so the controller only ever runs in its loop.
    """

    def __init__(self, pin: int | str, led_pin: int | str, *, pin_factory,
                 loop: asyncio.AbstractEventLoop | None = None,
                 long_press_s: float = LONG_PRESS_SECONDS, bounce_s: float = BOUNCE_SECONDS,
                 selftest_hold_s: float = SELFTEST_HOLD_SECONDS,
                 on_short_press: ButtonCallback | None = None,
                 on_long_press: ButtonCallback | None = None,
                 on_selftest_hold: ButtonCallback | None = None) -> None:
        if selftest_hold_s <= long_press_s:
            raise DeviceUsageError(f"the self-test hold ({selftest_hold_s} s) must be longer than the long press "
                                   f"({long_press_s} s)")
        self.on_short_press = on_short_press
        self.on_long_press = on_long_press
        self.on_selftest_hold = on_selftest_hold
        self.long_press_s = long_press_s
        self.selftest_hold_s = selftest_hold_s
        self.bounce_s = bounce_s
        self.mode: LedMode = "off"
        self._loop = loop or asyncio.get_running_loop()
        self._tasks: set[asyncio.Task] = set()
        self._lock = threading.Lock()  # press bookkeeping is touched by two gpiozero threads
        self._pressed_at: float | None = None
        self._held = False
        self._press_number = 0  # tells the press the self-test timer was started for from later ones
        try:
            self._button = Button(pin, pull_up=True, bounce_time=bounce_s, hold_time=long_press_s,
                                  pin_factory=pin_factory)
            try:
                self._led = PWMLED(led_pin, pin_factory=pin_factory)
            except Exception:
                self._button.close()
                raise
        except Exception as exc:  # gpiozero's GPIOZeroError tree, or OSError from the chip
            raise HardwareError(f"cannot open call button on GPIO {pin} / LED on GPIO {led_pin}: {exc}") from exc
        self._button.when_pressed = self._pressed
        self._button.when_released = self._released
        self._button.when_held = self._hold_reached
        self.led("idle")

    # -- gpiozero threads -------------------------------------------------

    def _pressed(self) -> None:
        with self._lock:
            self._pressed_at = time.monotonic()
            self._held = False
            self._press_number += 1

    def _hold_reached(self) -> None:
        with self._lock:
            if self._pressed_at is None or self._held:
                return
            self._held = True
            number = self._press_number
        self._dispatch("on_long_press")
        # gpiozero has one hold time per button; the second threshold is a timer on the loop that
        # checks the same press is still down when it runs out.
        try:
            self._loop.call_soon_threadsafe(self._loop.call_later, self.selftest_hold_s - self.long_press_s,
                                            self._selftest_hold_due, number)
        except RuntimeError:  # loop closed: shutting down
            pass

    def _selftest_hold_due(self, number: int) -> None:
        with self._lock:
            still_held = self._press_number == number and self._pressed_at is not None
        if still_held:
            self._run_callback("on_selftest_hold")

    def _released(self) -> None:
        with self._lock:
            pressed_at, held = self._pressed_at, self._held
            self._pressed_at, self._held = None, False
        if pressed_at is None or held:
            return
        # The pin driver debounces on the Pi; this check also covers factories
        # that do not (gpiozero's mock pins ignore bounce_time): a contact
        # glitch shorter than the bounce time is not a press.
        if time.monotonic() - pressed_at < self.bounce_s:
            log.debug("ignored a %.0f ms glitch on the call button", (time.monotonic() - pressed_at) * 1000)
            return
        self._dispatch("on_short_press")

    def _dispatch(self, name: str) -> None:
        try:
            self._loop.call_soon_threadsafe(self._run_callback, name)
        except RuntimeError:  # loop closed: the appliance is shutting down
            log.debug("call button %s after the loop closed; ignored", name)

    # -- the asyncio loop ---------------------------------------------------

    def _run_callback(self, name: str) -> None:
        callback = getattr(self, name)
        if callback is None:
            return
        result = callback()
        if inspect.isawaitable(result):
            task = asyncio.ensure_future(result)
            self._tasks.add(task)  # keep a reference until done, or it may be collected
            task.add_done_callback(self._tasks.discard)

    # -- LED ----------------------------------------------------------------

    def led(self, mode: LedMode) -> None:
        """Show ``mode`` on the LED: idle, waiting, in_call, fault or off."""
        if mode not in LED_MODES:
            raise DeviceUsageError(f"unknown LED mode {mode!r}; expected one of {', '.join(LED_MODES)}")
        self.mode = mode
        led = self._led
        # Each call replaces the previous pattern: gpiozero stops a running
        # blink/pulse thread before value/off/blink set a new one.
        if mode == "idle":
            led.pulse(fade_in_time=IDLE_FADE_SECONDS, fade_out_time=IDLE_FADE_SECONDS)
        elif mode == "waiting":
            led.value = WAITING_LEVEL
        elif mode == "in_call":
            led.on()
        elif mode == "fault":
            led.blink(on_time=FAULT_BLINK_SECONDS, off_time=FAULT_BLINK_SECONDS)
        else:
            led.off()

    @property
    def is_pressed(self) -> bool:
        return self._button.is_pressed

    def close(self) -> None:
        """Release both GPIOs (the LED goes dark). Safe to call twice."""
        for task in list(self._tasks):
            task.cancel()
        for device in (getattr(self, "_led", None), getattr(self, "_button", None)):
            if device is not None and not device.closed:
                device.close()
