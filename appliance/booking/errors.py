"""What can go wrong reading a booking's QR code on the unit."""
from __future__ import annotations

from protocol.errors import AmtsklingelError


class QrDecoderMissing(AmtsklingelError, ImportError):
    """The QR decoder (zxing-cpp) is not installed: the kiosk then offers only typing the code."""
