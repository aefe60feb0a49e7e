"""The call button on gpiozero's mock pins, with helpers to press it.

Same class as on the Pi (``GpioCallButton``); only the pin factory is
gpiozero's ``MockFactory``.  Tests and the demo's key binding drive the input
pin; the LED's PWM value is read back from the mock pin.
"""
from __future__ import annotations

import asyncio
import collections

from gpiozero.pins.mock import MockFactory, MockPWMPin

from appliance.hardware.button import GpioCallButton

SETTLE_SECONDS = 0.02  # lets the loop run callbacks handed over by call_soon_threadsafe
PIN_HISTORY = 2000  # mock pins log every change; an LED pulsing for days must not grow without bound


class BoundedMockPWMPin(MockPWMPin):
    """``MockPWMPin`` whose change log keeps only the latest changes."""

    def clear_states(self) -> None:
        super().clear_states()
        self.states = collections.deque(self.states, maxlen=PIN_HISTORY)


def mock_pin_factory() -> MockFactory:
    """A fresh mock factory whose pins all do PWM (the LED needs it)."""
    return MockFactory(pin_class=BoundedMockPWMPin)


class MockCallButton(GpioCallButton):
    """A :class:`GpioCallButton` on mock pins, plus ``press()``/``long_press()``/``hold_for_selftest()``.

    ``fail()`` breaks the contact: presses no longer reach the pin (the self-test's button item fails).
    """

    def __init__(self, pin: int = 17, led_pin: int = 18, *, pin_factory: MockFactory | None = None,
                 **kwargs) -> None:
        self.factory = pin_factory or mock_pin_factory()
        super().__init__(pin, led_pin, pin_factory=self.factory, **kwargs)
        self.input_pin = self.factory.pin(pin)
        self.led_pin = self.factory.pin(led_pin)
        self.broken = False

    def fail(self) -> None:
        """A broken contact or cable: pushing the button no longer changes the pin."""
        self.broken = True

    def repair(self) -> None:
        self.broken = False

    def push(self) -> None:
        """Close the contact (the button pulls its pin to ground)."""
        if not self.broken:
            self.input_pin.drive_low()

    def release(self) -> None:
        self.input_pin.drive_high()

    async def press(self, duration: float = 0.1) -> None:
        """A short press; returns after the callback has been scheduled and run."""
        self.push()
        await asyncio.sleep(duration)
        self.release()
        await asyncio.sleep(SETTLE_SECONDS)

    async def long_press(self, duration: float | None = None) -> None:
        """Hold past the long-press threshold, then let go."""
        self.push()
        await asyncio.sleep(duration if duration is not None else self.long_press_s + 0.2)
        self.release()
        await asyncio.sleep(SETTLE_SECONDS)

    async def hold_for_selftest(self) -> None:
        """Hold past the self-test threshold (the person installing the unit), then let go."""
        await self.long_press(self.selftest_hold_s + 0.2)

    @property
    def led_value(self) -> float:
        """The LED's current PWM duty cycle, 0.0 (dark) to 1.0 (full)."""
        return float(self.led_pin.state)
