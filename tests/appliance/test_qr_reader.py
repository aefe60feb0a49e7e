"""Reading a booking's QR code from camera pictures, as a citizen holds it up to the kiosk.

The pictures are drawn by the fake camera's card (appliance/hardware/fake/held_code.py): a printed
code turned, tilted, small, out of focus, in a dim room, with sensor noise, at the size the Pi 4's
camera gives the kiosk outside calls (640x360)."""
from __future__ import annotations

import asyncio

import numpy as np
import pytest
import segno

from appliance.booking.errors import QrDecoderMissing
from appliance.booking.qr_reader import QrRead, QrReader, luma
from appliance.hardware.fake.backend import FakeCamera
from appliance.hardware.fake.held_code import HeldCode, Look, held_code_picture

pytest.importorskip("zxingcpp", reason="the QR decoder zxing-cpp is not installed (pip install zxing-cpp==2.3.0)")

LINK = "https://buergerbuero.musterdorf.de/booking/7K3M9QX2"
CODE = "7K3M9QX2"
WIDTH, HEIGHT = 640, 360  # the Pi 4 camera's frames outside a call (appliance/hardware/software_video.py)

HOW_HELD = {
    "facing the camera": Look(),
    "turned a third": Look(angle=33),
    "upside down": Look(angle=180),
    "small, far away": Look(size=0.25, centre=(0.3, 0.4)),
    "at a slant": Look(tilt=0.3, angle=-12),
    "out of focus": Look(blur=1.0),
    "very blurred, held closer": Look(size=0.8, blur=2.0),
    "dim room": Look(contrast=0.25, noise=4),
    "noisy sensor": Look(noise=18),
    "all of it, moderately": Look(size=0.45, angle=-25, tilt=0.15, blur=1.0, contrast=0.5, noise=6),
}


@pytest.fixture(scope="module")
def reader() -> QrReader:
    return QrReader()


@pytest.mark.parametrize("how", list(HOW_HELD))
def test_a_booking_link_held_up_is_read_as_its_code(reader, how):
    picture = held_code_picture(LINK, WIDTH, HEIGHT, HOW_HELD[how])
    assert reader.read(picture) == QrRead(codes=(CODE,))


@pytest.mark.parametrize("printed", ["7K3M9QX2", "7k3m-9qx2", "7K3M 9OX2", "http://127.0.0.1:8080/booking/7K3M9QX2/",
                                     "HTTPS://RATHAUS.EXAMPLE/BOOKING/7K3M-9QX2?lang=tr#top"])
def test_the_bare_code_and_every_form_of_the_link_give_the_same_code(reader, printed):
    expected = "7K3M90X2" if "9OX2" in printed else CODE  # O is read as zero
    assert reader.read(held_code_picture(printed, WIDTH, HEIGHT)) == QrRead(codes=(expected,))


@pytest.mark.parametrize("content", [
    "https://www.musterdorf.de/abfallkalender",          # another link of the town
    "https://www.musterdorf.de/contacts",                 # ends in eight letters that would make a code
    "WIFI:S:Rathaus-Gast;T:WPA;P:geheim;;",               # the library's Wi-Fi
    "BEGIN:VCARD\nFN:Bürgerbüro\nEND:VCARD",
    "javascript:alert(1)//booking/7K3M9QX2",             # not http(s): never a booking
    "ftp://rathaus.example/booking/7K3M9QX2",
    "https://rathaus.example/booking/7K3M9QX2\u202e",    # a right-to-left override hidden in it
    "7K3M9QX2\x00",
    "https://rathaus.example/booking/7K3M9QX2?" + "x" * 1200,  # longer than any booking link
])
def test_a_qr_code_that_is_not_a_booking_is_recognised_as_such(reader, content):
    assert reader.read(held_code_picture(content, WIDTH, HEIGHT)) == QrRead(other=True)


def test_the_largest_qr_code_there_is_is_refused_without_trouble(reader):
    """Version 40 holds 2,331 bytes at level M: what a hostile code can carry. Its text is not looked at."""
    payload = ("https://rathaus.example/booking/7K3M9QX2#" + "\u00e4" * 1500).encode()[:2300]
    assert segno.make_qr(payload, error="m").version == 40
    picture = held_code_picture(payload, 1280, 720, Look(size=0.95, noise=0))
    assert reader.read(picture) == QrRead(other=True)


def test_a_picture_without_a_code_gives_nothing(reader):
    rng = np.random.default_rng(3)
    assert reader.read(rng.integers(0, 255, (HEIGHT, WIDTH), dtype=np.uint8)) == QrRead()
    assert reader.read(np.full((HEIGHT, WIDTH), 128, np.uint8)) == QrRead()


def test_two_codes_at_once_give_both_once(reader):
    left = held_code_picture(LINK, WIDTH, HEIGHT, Look(size=0.5, centre=(0.25, 0.5)))
    right = held_code_picture("https://rathaus.example/booking/ABCD2345", WIDTH, HEIGHT,
                              Look(size=0.5, centre=(0.75, 0.5)))
    both = np.hstack([left[:, :WIDTH // 2], right[:, WIDTH // 2:]])
    assert sorted(reader.read(both).codes) == ["7K3M9QX2", "ABCD2345"]


async def test_the_fake_cameras_frames_carry_the_held_code():
    camera = FakeCamera(WIDTH, HEIGHT, fps=30)
    track = camera.track(encoded=False)
    try:
        assert QrReader().read(await track.recv()) == QrRead()  # the test pattern
        camera.held.hold(LINK, Look(angle=20))
        assert QrReader().read(await track.recv()) == QrRead(codes=(CODE,))
        camera.held.hold(None)
        assert QrReader().read(await track.recv()) == QrRead()
    finally:
        camera.close()


async def test_frames_with_padded_lines_are_read_as_well():
    """Planes whose lines are longer than the picture (alignment) are cut to the picture's width."""
    camera = FakeCamera(WIDTH - 4, HEIGHT, fps=30)
    camera.held.hold(LINK)
    track = camera.track(encoded=False)
    try:
        frame = await track.recv()
        assert frame.planes[0].line_size > frame.width == WIDTH - 4
        assert luma(frame).shape == (HEIGHT, WIDTH - 4)
        assert QrReader().read(frame).codes == (CODE,)
    finally:
        camera.close()


def test_the_demo_holds_what_a_file_says(tmp_path):
    held = HeldCode()
    held.POLL_S = 0.0
    path = tmp_path / "camera-holds.txt"
    held.follow(path)
    assert held.content is None
    path.write_text(LINK + "\n")
    assert held.content == LINK
    assert QrReader().read(held.picture(WIDTH, HEIGHT)).codes == (CODE,)
    path.unlink()
    assert held.content is None and held.picture(WIDTH, HEIGHT) is None


def test_without_the_decoder_the_reader_says_what_to_install(monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "zxingcpp", None)  # import now raises ImportError
    reader = QrReader()
    assert not reader.available()
    with pytest.raises(QrDecoderMissing, match="python3-zxing-cpp"):
        reader.read(np.zeros((HEIGHT, WIDTH), np.uint8))


def test_reading_works_from_a_worker_thread(reader):
    """The scanner reads in a thread so the kiosk's event loop goes on meanwhile."""
    picture = held_code_picture(LINK, WIDTH, HEIGHT, Look(angle=5))
    assert asyncio.run(asyncio.to_thread(reader.read, picture)).codes == (CODE,)


async def test_any_picture_can_be_held_up_such_as_a_phones_screen():
    """A phone showing the booking's page: the code on a light screen with text around it, portrait."""
    from appliance.hardware.fake.held_code import card
    code = card(LINK)  # six pixels a module
    screen = np.full((code.shape[0] + 200, code.shape[1] + 40), 245, np.float32)  # held close: the code fills it
    screen[20:80, 20:-20] = np.random.default_rng(2).choice([40.0, 245.0], (60, code.shape[1]))  # lines of text
    screen[120:120 + code.shape[0], 20:20 + code.shape[1]] = code
    camera = FakeCamera(WIDTH, HEIGHT, fps=30)
    camera.held.hold_image(screen, Look(size=0.95, angle=-6, contrast=0.8))
    track = camera.track(encoded=False)
    try:
        assert QrReader().read(await track.recv()).codes == (CODE,)
    finally:
        camera.close()
