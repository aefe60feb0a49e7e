"""The call button and LED on gpiozero's MockFactory (the same class runs on the Pi)."""
import asyncio
import threading
import time

import pytest

from appliance.hardware.button import FAULT_BLINK_SECONDS, WAITING_LEVEL
from appliance.hardware.fake.button import MockCallButton


async def wait_for(predicate, within=3.0, interval=0.01):
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(interval)
    return True


class Recorder:
    def __init__(self):
        self.short, self.long, self.threads = 0, 0, set()

    def on_short(self):
        self.short += 1
        self.threads.add(threading.get_ident())

    def on_long(self):
        self.long += 1
        self.threads.add(threading.get_ident())


@pytest.fixture
async def button():
    b = MockCallButton()
    yield b
    b.close()


@pytest.fixture
def calls(button):
    r = Recorder()
    button.on_short_press, button.on_long_press = r.on_short, r.on_long
    return r


async def test_short_press(button, calls):
    await button.press(0.1)
    assert (calls.short, calls.long) == (1, 0)
    await button.press(0.7)  # still under the 1 s threshold
    assert (calls.short, calls.long) == (2, 0)
    assert calls.threads == {threading.get_ident()}  # callbacks run in the loop's thread


async def test_long_press_fires_once_while_held(button, calls):
    button.push()
    # Fires from gpiozero's hold thread after 1 s, before the release.
    assert await wait_for(lambda: calls.long == 1, within=2.5)
    assert button.is_pressed
    await asyncio.sleep(0.3)
    assert calls.long == 1  # no repeat while still held
    button.release()
    await asyncio.sleep(0.05)
    assert (calls.short, calls.long) == (0, 1)  # the release after a long press is not a short press
    assert calls.threads == {threading.get_ident()}
    await button.long_press()
    assert (calls.short, calls.long) == (0, 2)


async def test_long_press_not_before_threshold(button, calls):
    started = time.monotonic()
    button.push()
    assert await wait_for(lambda: calls.long == 1, within=2.5)
    assert time.monotonic() - started >= 0.95
    button.release()


async def test_contact_bounce_is_one_press(button, calls):
    # A worn switch: bursts of ~2 ms contacts on press and on release, driven
    # from another thread as the pin driver would.
    def chatter(times, end_pressed):
        for _ in range(times):
            button.push()
            time.sleep(0.002)
            button.release()
            time.sleep(0.002)
        if end_pressed:
            button.push()

    await asyncio.to_thread(chatter, 4, True)
    await asyncio.sleep(0.15)
    button.release()
    await asyncio.to_thread(chatter, 3, False)
    await asyncio.sleep(0.1)
    assert (calls.short, calls.long) == (1, 0)


async def test_coroutine_callbacks(button):
    done = asyncio.Event()

    async def on_short():
        await asyncio.sleep(0)
        done.set()

    button.on_short_press = on_short
    await button.press()
    await asyncio.wait_for(done.wait(), 1)


async def test_no_callback_set_is_fine(button):
    await button.press()
    await button.long_press(1.2)


async def test_led_idle_pulses_slowly(button):
    button.led("idle")
    seen = []
    assert await wait_for(lambda: seen.append(button.led_value) or (min(seen) < 0.1 and max(seen) > 0.9),
                          within=4.5, interval=0.02)
    # Slow: a full fade takes 1.5 s, so within 0.2 s the level moves only a little.
    start = button.led_value
    await asyncio.sleep(0.2)
    assert abs(button.led_value - start) < 0.4


async def test_led_steady_modes(button):
    for mode, level in (("waiting", WAITING_LEVEL), ("in_call", 1.0), ("off", 0.0)):
        button.led(mode)
        values = []
        for _ in range(10):
            values.append(button.led_value)
            await asyncio.sleep(0.03)
        assert values == [pytest.approx(level)] * 10, mode
        assert button.mode == mode
    assert WAITING_LEVEL < 1.0  # waiting and in_call look different


async def test_led_fault_blinks_fast(button):
    button.led("fault")
    button.led_pin.clear_states()
    await asyncio.sleep(1.0)
    states = list(button.led_pin.states)
    changes = [s for s in states[1:]]
    assert 6 <= len(changes) <= 1.0 / FAULT_BLINK_SECONDS + 2  # ~10 changes a second
    assert {s.state for s in changes} == {0.0, 1.0}
    button.led("off")
    assert button.led_value == 0.0


async def test_led_unknown_mode(button):
    with pytest.raises(ValueError, match="unknown LED mode"):
        button.led("disco")


async def test_close_releases_pins(button):
    button.led("in_call")
    button.close()
    button.close()  # twice is fine
    assert button.led_value == 0.0
    # The same GPIOs can be claimed again, e.g. by the next service start.
    again = MockCallButton(pin_factory=button.factory)
    again.close()


# -- the self-test hold: a second, longer threshold on the same press ------------------------------

@pytest.fixture
async def quick_button():
    b = MockCallButton(long_press_s=0.3, selftest_hold_s=0.8)
    yield b
    b.close()


def record_all(button):
    events = []
    button.on_short_press = lambda: events.append(("short", time.monotonic()))
    button.on_long_press = lambda: events.append(("long", time.monotonic()))
    button.on_selftest_hold = lambda: events.append(("selftest", time.monotonic()))
    return events


async def test_selftest_hold_fires_once_after_the_long_press(quick_button):
    events = record_all(quick_button)
    started = time.monotonic()
    quick_button.push()
    assert await wait_for(lambda: [e for e, _ in events] == ["long", "selftest"], within=3.0)
    assert events[1][1] - started >= 0.75
    await asyncio.sleep(0.5)
    quick_button.release()
    await asyncio.sleep(0.05)
    assert [e for e, _ in events] == ["long", "selftest"]  # no repeat, and the release fires nothing


async def test_letting_go_before_the_selftest_hold_is_only_a_long_press(quick_button):
    events = record_all(quick_button)
    await quick_button.long_press(0.5)
    await asyncio.sleep(0.6)  # past where the self-test hold of that press would have come
    assert [e for e, _ in events] == ["long"]
    # A new press held past the threshold after a quick release is its own press, timed from its start.
    quick_button.push()
    await asyncio.sleep(0.5)
    assert [e for e, _ in events] == ["long", "long"]
    assert await wait_for(lambda: len(events) == 3, within=2.0)
    assert events[2][0] == "selftest"
    quick_button.release()


async def test_selftest_hold_must_be_longer_than_the_long_press():
    with pytest.raises(ValueError):
        MockCallButton(long_press_s=1.0, selftest_hold_s=1.0)


async def test_a_broken_fake_button_delivers_no_press(quick_button):
    events = record_all(quick_button)
    quick_button.fail()
    await quick_button.press()
    await quick_button.long_press()
    assert events == []
    quick_button.repair()
    await quick_button.press()
    assert [e for e, _ in events] == ["short"]


async def test_pi_backend_button_has_the_selftest_hold(monkeypatch):
    # The pi backend's own opener, on gpiozero's mock pin factory chosen by name (as on the Pi: lgpio).
    from appliance.hardware.pi.backend import open_button
    monkeypatch.setenv("GPIOZERO_MOCK_PIN_CLASS", "mockpwmpin")  # the LED needs PWM
    button = open_button({"pin": 17, "led_pin": 18, "pin_factory": "mock", "long_press_s": 0.3,
                          "selftest_hold_s": 0.8})
    try:
        assert button.selftest_hold_s == 0.8
        events = record_all(button)
        pin = button._button.pin
        pin.drive_low()
        assert await wait_for(lambda: [e for e, _ in events] == ["long", "selftest"], within=3.0)
        pin.drive_high()
    finally:
        button.close()


async def test_backends_default_to_five_seconds_for_the_selftest():
    from appliance.hardware.fake.backend import open_button
    from appliance.hardware.interfaces import SELFTEST_HOLD_SECONDS
    button = open_button({})
    try:
        assert button.selftest_hold_s == SELFTEST_HOLD_SECONDS == 5.0
    finally:
        button.close()
