"""A USB camera's own H.264, made fit to pass through as it is (see ``appliance.hardware.encoded``).

aiortc cannot ask a pre-encoded stream for a keyframe, so a clerk who joins or loses a packet
waits for the camera's next IDR, and can decode it only with SPS and PPS in front. Many UVC
cameras send SPS/PPS once, at the start of streaming: :class:`SequenceHeaders` keeps the last
ones seen and puts them before every IDR that comes without.
"""
from __future__ import annotations

import logging

log = logging.getLogger(__name__)

START_CODE = b"\x00\x00\x00\x01"
NAL_IDR, NAL_SPS, NAL_PPS = 5, 7, 8


def nal_units(data: bytes) -> list[bytes]:
    """The NAL units of an Annex B byte stream, without their start codes."""
    units, start = [], data.find(b"\x00\x00\x01")
    while start >= 0:
        begin = start + 3
        end = data.find(b"\x00\x00\x01", begin)
        unit = data[begin:] if end < 0 else data[begin:end]
        if end >= 0 and unit.endswith(b"\x00"):
            unit = unit.rstrip(b"\x00")  # the next start code was a four-byte one (or trailing zeros)
        if unit:
            units.append(unit)
        start = end
    return units


def nal_type(unit: bytes) -> int:
    return unit[0] & 0x1F


class SequenceHeaders:
    """Keeps SPS/PPS and returns access units an aiortc receiver can start from at any IDR."""

    def __init__(self) -> None:
        self.sps: bytes | None = None
        self.pps: bytes | None = None
        self.inserted = 0  # IDRs that got the cached SPS/PPS, for the log
        self.frames_since_idr = 0

    def process(self, access_unit: bytes) -> tuple[bytes, bool]:
        """(the access unit to send, whether a decoder can start at it)."""
        units = nal_units(access_unit)
        types = {nal_type(u) for u in units}
        for unit in units:
            if nal_type(unit) == NAL_SPS:
                if self.sps is None and len(unit) > 3:
                    # Firefox's OpenH264 decodes only (constrained) baseline, 66; most browsers take any.
                    log.info("camera H.264: profile_idc %d, level %.1f", unit[1], unit[3] / 10)
                self.sps = unit
            elif nal_type(unit) == NAL_PPS:
                self.pps = unit
        if NAL_IDR not in types:
            self.frames_since_idr += 1
            return access_unit, False
        self.frames_since_idr = 0
        if NAL_SPS in types and NAL_PPS in types:
            return access_unit, True
        if self.sps is None or self.pps is None:
            return access_unit, False  # no decoder could use it: wait for one with headers
        self.inserted += 1
        headers = b"".join(START_CODE + u for u in (self.sps, self.pps) if nal_type(u) not in types)
        return headers + access_unit, True
