"""The kiosk's upload budget in a call: how fast the citizen's picture goes to each peer.

A kiosk in a call with guests sends its picture once per peer (a mesh: docs/decisions/0007-three-way-calls.md),
so every guest adds a whole copy to the kiosk's upload, and a village kiosk often sits behind a DSL or LTE
uplink of 1-2.5 Mbit/s. The kiosk therefore keeps a call's upload within a budget (``call_upload_kbit_s`` of
its settings from central): every copy of the picture gets an equal share of it, less the voice that goes
beside it, and never more than the camera is set up for. Whenever the number of peers receiving the picture
changes (a guest joins or leaves), the one encoder everybody's copy comes from is set to the new share: the
Pi 4's hardware H.264 encoder (:meth:`appliance.hardware.encoded.EncodedVideoTrack.request_bitrate`), or the VP8
the kiosk encodes once for everyone (:class:`appliance.call.fanout.Vp8PacketEncoder`). Fewer bytes per copy is
also fewer packets for the kiosk to encrypt and send (bench three_way).

The price: while a guest is in the call, the clerk and the guest see the citizen at a lower bitrate.
"""
from __future__ import annotations

import logging

from appliance.call.fanout import SOURCE_LINKS
from protocol.fleet import DEFAULT_CALL_UPLOAD_KBIT_S  # the reason for it is there

log = logging.getLogger(__name__)

# What one copy of the voice takes: Opus at 96 kbit/s and its RTP, SRTP, UDP and IP headers, 50 packets/s.
VOICE_BPS = 120_000
# Of a picture's bytes on the wire, the part that is picture: the rest is headers (about 50 bytes per packet).
PICTURE_SHARE = 0.95
# Below this a moving picture falls apart into blocks: the budget is then exceeded rather than the picture lost.
MIN_PICTURE_BPS = 150_000


def picture_share(budget_kbit_s: int, peers: int, ceiling_bps: int) -> int:
    """The bitrate (bit/s) of the picture for each of ``peers`` copies within ``budget_kbit_s``, at most
    ``ceiling_bps`` (what the camera or encoder is set up for)."""
    if peers < 1:
        return ceiling_bps
    per_copy = budget_kbit_s * 1000 / peers - VOICE_BPS
    return int(max(MIN_PICTURE_BPS, min(ceiling_bps, per_copy * PICTURE_SHARE)))


def camera_encoder(track):  # noqa: ANN001, ANN201 - any track; the camera's EncodedVideoTrack or None
    """The camera track under ``track``'s wrappers (tee, watch, breakage) whose encoder's bitrate can be set."""
    for _ in range(8):
        if track is None:
            return None
        if callable(getattr(track, "request_bitrate", None)):
            return track
        track = next((getattr(track, name) for name in SOURCE_LINKS if getattr(track, name, None) is not None),
                     None)
    return None


class UploadBudget:
    """Sets the picture's bitrate for the number of peers that receive it (:meth:`apply`)."""

    def __init__(self, kbit_s: int = DEFAULT_CALL_UPLOAD_KBIT_S) -> None:
        self.kbit_s = kbit_s
        self.peers = 0
        self.picture_bps: int | None = None  # what the picture was last set to (None: not yet)

    def apply(self, peers: int, encoder) -> int | None:  # noqa: ANN001 - a Vp8PacketEncoder or an EncodedVideoTrack
        """``peers`` receive the picture from ``encoder``: set its bitrate to their share.
        Returns the bitrate set, or None if ``encoder`` cannot be set (the picture goes on as it is)."""
        ceiling = getattr(encoder, "max_bitrate", None)
        if encoder is None or not ceiling or peers < 1:
            return None
        share = picture_share(self.kbit_s, peers, ceiling)
        if peers == self.peers and share == self.picture_bps:
            return share
        if hasattr(encoder, "request_bitrate"):
            if not encoder.request_bitrate(share):
                return None
        else:
            encoder.bitrate = share
        if peers * (share / PICTURE_SHARE + VOICE_BPS) > self.kbit_s * 1000 + 1000:
            log.warning("call upload: %d peers need at least %d kbit/s, over the budget of %d kbit/s; raise "
                        "call_upload_kbit_s in the kiosk's settings if the site's uplink has room",
                        peers, (MIN_PICTURE_BPS + VOICE_BPS) * peers // 1000, self.kbit_s)
        log.info("call upload within %d kbit/s: the picture goes to %d peer(s) at %d kbit/s each",
                 self.kbit_s, peers, share // 1000)
        self.peers, self.picture_bps = peers, share
        return share
