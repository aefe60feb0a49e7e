"""What the clerk's browser answered about video: the codec the kiosk will send, or a rejection.

The kiosk's offer lists its video codecs in its order of preference (appliance/call/peer.py);
aiortc then sends with the first of them that the answer also lists, whatever the answer's
order. :func:`sending_codec` applies exactly aiortc's rule, so the kiosk knows before any media
flows whether its H.264 packets can pass through or it must send frames for VP8.

A browser that can decode none of the offered codecs (Firefox without the OpenH264 plugin, given
an H.264-only offer) rejects the video section: ``m=video 0`` with no ICE or DTLS attributes.
aiortc refuses such an answer as a whole ("ICE username fragment or password is missing"), so
the call would not even carry audio. :func:`accept_rejected_video` rewrites each rejected
section into an inactive one on the transport of the sections that were accepted: aiortc then
sends and expects nothing for it, and the browser never learns of the rewrite.
"""
from __future__ import annotations

from aiortc import RTCRtpCodecCapability
from aiortc.codecs import CODECS
from aiortc.rtcpeerconnection import filter_preferred_codecs, find_common_codecs
from aiortc.sdp import SessionDescription

from protocol.errors import AmtsklingelError

# What a rejected section needs from an accepted one to pass aiortc's checks; all of it describes
# the shared (bundled) transport, none of it media.
TRANSPORT_ATTRIBUTES = ("a=ice-ufrag:", "a=ice-pwd:", "a=fingerprint:", "a=setup:")


class UnusableAnswer(AmtsklingelError, ValueError):
    """The clerk's answer leaves nothing to call with (every section rejected, or nothing bundled)."""


def split_sections(sdp: str) -> tuple[list[str], list[list[str]]]:
    """The session lines and each media section's lines (each starting with its ``m=`` line)."""
    session: list[str] = []
    sections: list[list[str]] = []
    for line in sdp.splitlines():
        if not line:
            continue
        if line.startswith("m="):
            sections.append([line])
        elif sections:
            sections[-1].append(line)
        else:
            session.append(line)
    return session, sections


def _rejected(section: list[str]) -> bool:
    return section[0].split()[1] == "0"


def rejected_video(sdp: str) -> bool:
    """True if the answer rejected a video section (``m=video 0``)."""
    return any(section[0].startswith("m=video ") and _rejected(section) for section in split_sections(sdp)[1])


def accept_rejected_video(answer: str, offer: str) -> str:
    """``answer`` with each rejected video section made inactive and bundled, as aiortc accepts it.

    ``offer`` is the kiosk's own offer: the rewritten section names one of its codecs (aiortc
    insists on a common one) and keeps its ``a=mid``.
    """
    session, sections = split_sections(answer)
    accepted = next((s for s in sections if not _rejected(s)), None)
    if accepted is None:
        raise UnusableAnswer("the clerk's browser rejected every media section of the call; it has no "
                             "audio either: check its microphone permission and WebRTC settings")
    transport = [line for line in accepted if line.startswith(TRANSPORT_ATTRIBUTES)]
    offered = split_sections(offer)[1]
    mids: list[str] = []
    for index, section in enumerate(sections):
        if not (section[0].startswith("m=video ") and _rejected(section)):
            continue
        mid = next((line for line in section if line.startswith("a=mid:")), None) or \
            next(line for line in offered[index] if line.startswith("a=mid:"))
        rtpmap = next(line for line in offered[index] if line.startswith("a=rtpmap:"))
        payload_type = rtpmap.split(":", 1)[1].split()[0]
        codec = [rtpmap, *(line for line in offered[index] if line.startswith(f"a=fmtp:{payload_type} "))]
        profile = section[0].split()[2]
        sections[index] = [f"m=video 9 {profile} {payload_type}", "c=IN IP4 0.0.0.0", mid, "a=inactive",
                           "a=rtcp-mux", *codec, *transport]
        mids.append(mid.removeprefix("a=mid:"))
    bundle = next((i for i, line in enumerate(session) if line.startswith("a=group:BUNDLE")), None)
    if bundle is None:
        raise UnusableAnswer("the clerk's answer does not bundle its media, so its rejected video section "
                             "cannot be set aside; use a current browser")
    grouped = session[bundle].split()[1:]
    session[bundle] = " ".join(["a=group:BUNDLE", *grouped, *(mid for mid in mids if mid not in grouped)])
    return "\r\n".join([*session, *(line for section in sections for line in section)]) + "\r\n"


def sending_codec(answer: str, preferences: list[RTCRtpCodecCapability]) -> str | None:
    """The codec aiortc will send video with, lower case (``video/h264``, ``video/vp8``); None if
    the answer has no video section or rejected it. ``preferences``: the offer's (empty = aiortc's)."""
    for media in SessionDescription.parse(answer).media:
        if media.kind != "video":
            continue
        if media.port == 0:
            return None
        common = filter_preferred_codecs(find_common_codecs(CODECS["video"], media.rtp.codecs), preferences)
        return common[0].mimeType.lower() if common else None
    return None
