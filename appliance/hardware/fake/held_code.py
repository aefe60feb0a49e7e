"""A QR code held up to the fake camera: a printed card in front of a room, as a real camera sees it.

Tests and the demo "hold a booking's QR code to the camera" with this: :func:`held_code_picture`
draws the card (segno's modules on white paper) turned, tilted, small or large, blurred, in poor
light and with sensor noise, over a plain background; :func:`held_picture` does the same with any
picture (a phone's screen showing the booking); :class:`HeldCode` is what the fake camera shows
while something is held (appliance/hardware/fake/camera.py). Only numpy, so the fake camera needs
nothing the appliance does not have already.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import segno

PAPER, INK = 225, 25     # a white card and black print as a camera exposes them (luma)
QUIET_ZONE = 4           # modules of white around the code, as printed (the QR standard's margin)
CARD_MARGIN = 2          # further white of the card around the quiet zone, in modules
MODULE_PX = 6            # the card is drawn at this many pixels per module, then mapped into the picture


@dataclass(frozen=True)
class Look:
    """How the card is held. ``size``: the card's side as a share of the picture's height; ``angle``:
    turned in the picture, degrees; ``tilt``: the card's far edge this much narrower (0 = facing the
    camera, 0.3 = held at a clear slant); ``blur``: out of focus, pixels; ``contrast``: 1 = black on
    white, 0.25 = a dim room or a phone screen at low brightness; ``noise``: sensor noise, luma
    standard deviation; ``centre``: where, as shares of width and height."""

    size: float = 0.6
    angle: float = 0.0
    tilt: float = 0.0
    blur: float = 0.0
    contrast: float = 1.0
    noise: float = 2.0
    centre: tuple[float, float] = (0.5, 0.5)
    seed: int = 1


def card(content: str | bytes, *, error: str = "m") -> np.ndarray:
    """The printed card: the QR code with its quiet zone and a white margin, ``MODULE_PX`` per module.

    ``content`` longer than any QR code holds raises segno's ``DataOverflowError``."""
    code = segno.make_qr(content, error=error)
    modules = np.array([[bool(v) for v in row] for row in code.matrix], dtype=bool)
    pad = QUIET_ZONE + CARD_MARGIN
    modules = np.pad(modules, pad, constant_values=False)
    return np.where(np.kron(modules, np.ones((MODULE_PX, MODULE_PX), bool)), INK, PAPER).astype(np.float32)


def background(width: int, height: int) -> np.ndarray:
    """A plain room: a wall brighter at the top, a darker band (a desk, a jacket) at the bottom."""
    rows = np.linspace(170, 110, height, dtype=np.float32)[:, None]
    picture = np.repeat(rows, width, axis=1)
    picture[int(height * 0.8):, :] -= 50
    return picture


def held_code_picture(content: str | bytes, width: int, height: int, look: Look = Look()) -> np.ndarray:
    """The camera's luma picture (``height`` x ``width``, uint8) of a card with ``content`` held up."""
    return held_picture(card(content), width, height, look)


def held_picture(face: np.ndarray, width: int, height: int, look: Look = Look()) -> np.ndarray:
    """The camera's luma picture of ``face`` (any grey picture: a card, a phone's screen) held up; ``look.size``
    is then its longer side's share of the picture's height."""
    face = np.asarray(face, np.float32)
    fh, fw = face.shape
    picture = background(width, height)
    target = _corners(width, height, fw, fh, look)
    inverse = np.linalg.inv(_homography(np.array([[0, 0], [fw, 0], [fw, fh], [0, fh]], float), target))
    x0, y0 = np.floor(target.min(axis=0)).astype(int).clip(0, [width - 1, height - 1])
    x1, y1 = np.ceil(target.max(axis=0)).astype(int).clip(0, [width - 1, height - 1]) + 1
    ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float64)
    src = inverse @ np.stack([xs.ravel() + 0.5, ys.ravel() + 0.5, np.ones(xs.size)])
    u, v = src[0] / src[2], src[1] / src[2]
    inside = (u >= 0) & (u < fw) & (v >= 0) & (v < fh)
    region = picture[y0:y1, x0:x1].reshape(-1)
    region[inside] = _bilinear(face, u[inside] - 0.5, v[inside] - 0.5)
    picture[y0:y1, x0:x1] = region.reshape(y1 - y0, x1 - x0)
    picture = _dim(picture, look.contrast)
    if look.blur > 0:
        picture = _blur(picture, look.blur)
    if look.noise > 0:
        picture += np.random.default_rng(look.seed).normal(0, look.noise, picture.shape).astype(np.float32)
    return picture.clip(0, 255).astype(np.uint8)


def _corners(width: int, height: int, fw: int, fh: int, look: Look) -> np.ndarray:
    """Where the held picture's corners (top-left, clockwise) land in the camera's picture."""
    scale = look.size * height / max(fw, fh)
    half_w, half_h = fw * scale / 2, fh * scale / 2
    narrow = 1 - look.tilt  # the right edge is farther away: shorter
    shape = np.array([[-half_w, -half_h], [half_w, -half_h * narrow], [half_w, half_h * narrow], [-half_w, half_h]])
    a = math.radians(look.angle)
    turn = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    centre = np.array([look.centre[0] * width, look.centre[1] * height])
    return shape @ turn.T + centre


def _homography(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    rows, rhs = [], []
    for (x, y), (u, v) in zip(src, dst):
        rows += [[x, y, 1, 0, 0, 0, -u * x, -u * y], [0, 0, 0, x, y, 1, -v * x, -v * y]]
        rhs += [u, v]
    h = np.linalg.solve(np.array(rows, float), np.array(rhs, float))
    return np.append(h, 1.0).reshape(3, 3)


def _bilinear(image: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    h, w = image.shape
    x, y = x.clip(0, w - 1.001), y.clip(0, h - 1.001)
    x0, y0 = x.astype(int), y.astype(int)
    fx, fy = x - x0, y - y0
    top = image[y0, x0] * (1 - fx) + image[y0, x0 + 1] * fx
    bottom = image[y0 + 1, x0] * (1 - fx) + image[y0 + 1, x0 + 1] * fx
    return top * (1 - fy) + bottom * fy


def _dim(picture: np.ndarray, contrast: float) -> np.ndarray:
    mid = (PAPER + INK) / 2
    return mid + (picture - mid) * contrast


def _blur(picture: np.ndarray, radius: float) -> np.ndarray:
    """Three box blurs of about ``radius``: close to a Gaussian (defocus), numpy only."""
    r = max(1, round(radius))
    kernel = np.ones(2 * r + 1, np.float32) / (2 * r + 1)
    for _ in range(3):
        picture = np.apply_along_axis(np.convolve, 1, np.pad(picture, ((0, 0), (r, r)), mode="edge"), kernel, "valid")
        picture = np.apply_along_axis(np.convolve, 0, np.pad(picture, ((r, r), (0, 0)), mode="edge"), kernel, "valid")
    return picture


class HeldCode:
    """What the fake camera holds up: nothing, a card with a QR code, or any picture (drawn once per size).

    ``hold(text)`` / ``hold_image(grey)`` / ``hold(None)`` from tests; ``follow(path)`` for the demo: while
    the file holds text, that text is held as a QR code (looked at twice a second)."""

    POLL_S = 0.5

    def __init__(self) -> None:
        self._content: str | bytes | None = None
        self._face: np.ndarray | None = None
        self._look = Look()
        self._pictures: dict[tuple[int, int], np.ndarray] = {}
        self._file: Path | None = None
        self._file_seen: tuple[float, int] | None = None
        self._next_poll = 0.0

    def hold(self, content: str | bytes | None, look: Look = Look()) -> None:
        face = card(content) if content is not None else None  # too long for a QR code: refused here
        self._content, self._face, self._look, self._pictures = content, face, look, {}

    def hold_image(self, image: np.ndarray, look: Look = Look()) -> None:
        """Any grey picture held up instead of a printed card, e.g. a phone showing the booking's page."""
        self._content, self._face, self._look, self._pictures = None, np.asarray(image, np.float32), look, {}

    def follow(self, path: Path) -> None:
        self._file = Path(path)

    @property
    def content(self) -> str | bytes | None:
        self._poll()
        return self._content

    def picture(self, width: int, height: int) -> np.ndarray | None:
        """The camera's luma picture while something is held, else None."""
        self._poll()
        if self._face is None:
            return None
        if (width, height) not in self._pictures:
            self._pictures[(width, height)] = held_picture(self._face, width, height, self._look)
        return self._pictures[(width, height)]

    def _poll(self) -> None:
        if self._file is None or time.monotonic() < self._next_poll:
            return
        self._next_poll = time.monotonic() + self.POLL_S
        try:
            stat = self._file.stat()
            seen = (stat.st_mtime, stat.st_size)
            if seen != self._file_seen:
                text = self._file.read_text(encoding="utf-8").strip()[:2000]
                self._file_seen = seen
                self.hold(text or None)
        except FileNotFoundError:
            if self._file_seen is not None:
                self._file_seen = None
                self.hold(None)
        except (OSError, UnicodeDecodeError, ValueError):
            self._file_seen = None
            self.hold(None)  # unreadable or too long for a QR code: nothing held
