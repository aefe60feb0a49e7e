"""Reading a booking code from what a citizen typed or a QR code held: one rule for every door."""
from __future__ import annotations

import pytest

from protocol.booking_lookup import booking_code_in_qr, normalise_booking_code


@pytest.mark.parametrize("typed, code", [
    ("7K3M9QX2", "7K3M9QX2"), ("7k3m-9qx2", "7K3M9QX2"), (" 7K3M 9QX2 ", "7K3M9QX2"),
    ("7K3M9OX2", "7K3M90X2"),  # the letter O is the digit 0
    ("IL3M9QX2", "113M9QX2"),  # I and L are the digit 1
])
def test_a_typed_code_is_read_as_people_write_it(typed, code):
    assert normalise_booking_code(typed) == code


@pytest.mark.parametrize("typed", ["", "7K3M9QX", "7K3M9QX22", "7K3M9QU2", "7K3M_9QX2", "7K3M9QX2\n7K3M9QX2",
                                   "7" + "-" * 60 + "K3M9QX2"])
def test_anything_else_typed_is_no_code(typed):
    assert normalise_booking_code(typed) is None


@pytest.mark.parametrize("text, code", [
    ("7K3M-9QX2", "7K3M9QX2"),
    ("https://rathaus.example/booking/7K3M9QX2", "7K3M9QX2"),
    ("http://127.0.0.1:8080/booking/7k3m-9qx2/", "7K3M9QX2"),
    ("https://rathaus.example/stadt/booking/7K3M9QX2?lang=ar#x", "7K3M9QX2"),
])
def test_a_booking_qr_code_gives_its_code(text, code):
    assert booking_code_in_qr(text) == code


@pytest.mark.parametrize("text", [
    "https://rathaus.example/7K3M9QX2", "https://rathaus.example/contacts", "https://rathaus.example/booking/",
    "javascript:alert(1)//booking/7K3M9QX2", "file:///booking/7K3M9QX2", "WIFI:S:x;T:WPA;P:y;;",
    "7K3M9QX2\u202e", "https://rathaus.example/booking/7K3M9QX2?" + "a" * 600, "http://[::1/booking/7K3M9QX2",
])
def test_other_qr_codes_give_none(text):
    assert booking_code_in_qr(text) is None
