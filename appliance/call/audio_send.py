"""The citizen's voice is encoded with Opus's low-delay mode: heard 4 ms sooner at the clerk.

Opus looks ahead before it encodes: 6.5 ms in the speech mode (``voip``) aiortc sets, 2.5 ms in its
low-delay mode (CELT only). At the 96 kbit/s aiortc sends, CELT carries speech as well as the speech mode
does; the speech mode's gain is at low bitrates. The clerk's browser decodes either without being told.

aiortc creates its sender's encoder when the first frame is sent and has no setting for the mode, so
:func:`use_low_delay_opus` looks in on the sender's first frame: if the call settled on Opus, the sender
gets an Opus encoder in low-delay mode before it has encoded anything. If that ever stops fitting the
installed aiortc, the sender keeps aiortc's own encoder and the log says so.
"""
from __future__ import annotations

import logging

from aiortc.codecs.opus import OpusEncoder

log = logging.getLogger(__name__)

SENDER_ATTRIBUTE = "_RTCRtpSender__encoder"  # where aiortc 1.x keeps it
APPLICATION = "lowdelay"


class LowDelayOpusEncoder(OpusEncoder):
    """aiortc's Opus encoder in low-delay mode (the option is read when the codec opens, at the first frame)."""

    def __init__(self) -> None:
        super().__init__()
        self.codec.options = {**self.codec.options, "application": APPLICATION}


def use_low_delay_opus(sender) -> bool:
    """Have an audio ``RTCRtpSender`` encode Opus in low-delay mode; call before media flows.

    False (and aiortc's encoder kept) if the installed aiortc keeps its encoder elsewhere."""
    if getattr(sender, SENDER_ATTRIBUTE, "missing") is not None or not hasattr(sender, "_next_encoded_frame"):
        log.warning("aiortc's audio sender is built differently than expected; the kiosk's voice keeps "
                    "Opus's 6.5 ms look-ahead")
        return False
    next_frame = sender._next_encoded_frame

    async def first_frame_low_delay(codec):
        if getattr(sender, SENDER_ATTRIBUTE) is None and codec.mimeType.lower() == "audio/opus":
            try:
                encoder = LowDelayOpusEncoder()
            except AttributeError:
                # aiortc before 1.10 (Debian trixie's python3-aiortc, the image's) drives libopus itself
                # and has no codec options: without this the kiosk sent no voice at all.
                log.warning("this aiortc's Opus encoder has no low-delay mode; the kiosk's voice keeps "
                            "Opus's 6.5 ms look-ahead")
            else:
                setattr(sender, SENDER_ATTRIBUTE, encoder)
        return await next_frame(codec)
    sender._next_encoded_frame = first_frame_low_delay
    return True
