"""Passing a call's signaling from one side to the other, within limits.

Each side of a call may send so many offers, answers and candidates (see
:mod:`central.live.limits`); beyond that the sender gets ``rate_limited`` and
nothing reaches the other side, so a flooding kiosk cannot bury a clerk's
console (or the reverse). What does pass is filtered by the candidate rule
(:mod:`central.live.candidates`).
"""
from __future__ import annotations

from central.live.candidates import CandidateFilter
from central.live.limits import CALL_CANDIDATES, CALL_SDP, Buckets, Rate, retry_after_s
from central.live.link import Link
from protocol import messages as m
from protocol.codec import encode
from protocol.errors import ErrorCode, ProtocolError


class SignalingRelay:
    def __init__(self, candidates: CandidateFilter | None = None, *, sdp: Rate = CALL_SDP,
                 trickled: Rate = CALL_CANDIDATES):
        self.candidates = candidates or CandidateFilter()
        self._sdp = Buckets(sdp)
        self._trickled = Buckets(trickled)

    def forward(self, visit_id: str, sender: str, msg: m.RtcOffer | m.RtcAnswer | m.RtcCandidate,
                to: Link | None) -> None:
        """Pass ``msg`` from ``sender`` ("kiosk" or "staff") of this call on to the link ``to``, if any."""
        buckets = self._trickled if isinstance(msg, m.RtcCandidate) else self._sdp
        wait = buckets.take((visit_id, sender))
        if wait:
            seconds = retry_after_s(wait)
            raise ProtocolError(ErrorCode.RATE_LIMITED, f"too many {msg.type} messages in this call; "
                                f"try again in {seconds} s", retry_after_s=seconds)
        passed = self.candidates.apply(msg)
        if passed is not None and to is not None:
            to.send(encode(passed))
