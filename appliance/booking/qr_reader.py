"""Reads QR codes in a camera picture, on the unit, and finds a booking code in them.

The decoder is zxing-cpp (Debian trixie's python3-zxing-cpp 2.3 in the image; the same version
from PyPI in the development environment): of the decoders Debian ships it is the one that reads
codes held at an angle, small, slightly blurred or in poor light (zbar reads upright, sharp codes
well and little else), and it takes a numpy array without a copy. It is imported when the first
picture is read, so the appliance starts (and the keypad still works) where it is missing.

Only the luma plane is read: QR codes are black on white, and a camera frame's Y plane is that
picture already, with no conversion. Nothing of the picture is kept.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import av
import numpy as np

from appliance.booking.errors import QrDecoderMissing
from protocol.booking_lookup import booking_code_in_qr

log = logging.getLogger(__name__)

# Planar formats whose first plane is the luma picture as it is.
_LUMA_FIRST = frozenset({"yuv420p", "yuvj420p", "nv12", "nv21", "yuv422p", "yuv444p", "gray"})


@dataclass(frozen=True)
class QrRead:
    """What one picture showed: the booking codes found, and whether some other QR code was there."""

    codes: tuple[str, ...] = ()
    other: bool = False  # a QR code that is not a booking's (a shop's link, a Wi-Fi code, too long, ...)


def luma(picture: av.VideoFrame | np.ndarray) -> np.ndarray:
    """The picture's luma as a C-contiguous 2-D uint8 array: a view of the Y plane where it can be."""
    if isinstance(picture, np.ndarray):
        gray = picture if picture.ndim == 2 else _rgb_to_luma(picture)
        return np.ascontiguousarray(gray, dtype=np.uint8)
    if picture.format.name in _LUMA_FIRST:
        plane = picture.planes[0]
        rows = np.frombuffer(plane, np.uint8).reshape(picture.height, plane.line_size)
        return np.ascontiguousarray(rows[:, :picture.width])  # a copy only where lines are padded
    return picture.to_ndarray(format="gray")


def _rgb_to_luma(rgb: np.ndarray) -> np.ndarray:
    return (rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114).astype(np.uint8)


class QrReader:
    """Finds booking codes in pictures. One per scanner; ``read`` may run in a worker thread."""

    def __init__(self) -> None:
        self._zxing = None

    def available(self) -> bool:
        """False where the decoder is not installed (then only the keypad is offered)."""
        try:
            self._decoder()
        except QrDecoderMissing:
            return False
        return True

    def _decoder(self):
        if self._zxing is None:
            try:
                import zxingcpp
            except ImportError as exc:
                raise QrDecoderMissing("the QR decoder is missing: install python3-zxing-cpp (the image has it), "
                                       "or pip install zxing-cpp==2.3.0 in a development environment") from exc
            self._zxing = zxingcpp
        return self._zxing

    def texts(self, picture: av.VideoFrame | np.ndarray) -> list[str]:
        """The text of every QR code in the picture (none may be a booking's).

        zxing's local-average threshold copes with uneven light (a shadow across the card); where it
        finds nothing, one threshold for the whole picture still reads a dim, soft code that the local
        one breaks up. Most pictures have no code at all, so this doubles the usual cost (bench/qr_decode.py)."""
        zxing = self._decoder()
        gray = luma(picture)
        for binarizer in (zxing.Binarizer.LocalAverage, zxing.Binarizer.GlobalHistogram):
            found = zxing.read_barcodes(gray, formats=zxing.BarcodeFormat.QRCode, try_rotate=True,
                                        try_downscale=True, binarizer=binarizer)
            if found:
                return [result.text for result in found]
        return []

    def read(self, picture: av.VideoFrame | np.ndarray) -> QrRead:
        codes, other = [], False
        for text in self.texts(picture):
            code = booking_code_in_qr(text)
            if code is None:
                other = True
            elif code not in codes:
                codes.append(code)
        return QrRead(tuple(codes), other)
