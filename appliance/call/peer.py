"""The kiosk's WebRTC peer (aiortc): sends camera and microphone, receives the clerk.

The kiosk makes the offer, so it decides codecs (:func:`offered_video_codecs`, the one place
that does): a camera that hands over H.264 packets (Pi 4) offers H.264 passthrough first and
VP8 as the fallback, since Firefox ESR without its OpenH264 plugin has no H.264. The clerk's
answer settles it (appliance/call/answer.py) before any media flows: for VP8 the camera is
asked for frames instead, at a size the Pi 4 can encode in software (``FALLBACK_*``); a
browser that rejects the video section gets a call with audio only ("video_rejected").
ICE servers are exactly those central hands over — never aiortc's public default.
A kiosk set to relay-only (its settings from central) offers and uses relay candidates only
(:func:`keep_relay_candidates`), so its network exchanges media packets with the TURN server alone.
What the clerk's side names as candidates (trickled, or in the answer's SDP) is
checked against the candidate rule (protocol/candidates.py) before aiortc sees it,
so a candidate cannot make the kiosk send packets into, say, a metadata service.
"""
from __future__ import annotations

import asyncio
import dataclasses
import logging
import socket
from collections.abc import Callable

from aiortc import (
    RTCConfiguration,
    RTCIceCandidate,
    RTCIceServer,
    RTCPeerConnection,
    RTCRtpCodecCapability,
    RTCRtpSender,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.sdp import candidate_from_sdp

from appliance.call.answer import accept_rejected_video, rejected_video, sending_codec
from appliance.call.audio_buffer import bound_playback, decode_skipped, use_for_audio
from appliance.call.audio_send import use_low_delay_opus
from appliance.call.catch_up import CatchUp, use_catch_up
from appliance.call.consent import RFC_7675, ConsentTiming, PatientConsent, use_patient_consent
from appliance.call.fallback import FallbackVideoTrack
from appliance.hardware.encoded import h264_codecs
from appliance.hardware.software_video import SOFTWARE_FPS, SOFTWARE_SIZE
from protocol import messages as m
from protocol.candidates import DEFAULT_NETWORKS, CandidatePolicy, ip_literal, turn_hosts

log = logging.getLogger(__name__)


RESOLVE_TIMEOUT_S = 3.0

# The VP8 fallback of a kiosk whose camera passes H.264 through: what a Pi 4 encodes in software.
FALLBACK_WIDTH, FALLBACK_HEIGHT = SOFTWARE_SIZE
FALLBACK_FPS = SOFTWARE_FPS
H264 = "video/h264"


def offered_video_codecs(encoded: bool) -> list[RTCRtpCodecCapability] | None:
    """The video codecs the kiosk offers, best first; None leaves aiortc's own list (VP8, then H.264).

    ``encoded``: the camera's track yields H.264 packets. They pass through untouched if the clerk's
    browser takes H.264; otherwise VP8 (which every WebRTC browser must decode) from frames.
    """
    if not encoded:
        return None  # frames: aiortc encodes either codec itself
    vp8 = [c for c in RTCRtpSender.getCapabilities("video").codecs if c.mimeType.lower() == "video/vp8"]
    return h264_codecs() + vp8


async def candidate_policy(networks: tuple[str, ...], ice_servers: list[m.IceServer]) -> CandidatePolicy:
    """The rule for one call: the configured networks, and the TURN servers' addresses for relay candidates."""
    loop = asyncio.get_running_loop()
    addresses: set[str] = set()
    for host in turn_hosts(url for server in ice_servers for url in server.urls):
        if ip_literal(host) is not None:
            addresses.add(host)
            continue
        try:
            async with asyncio.timeout(RESOLVE_TIMEOUT_S):
                infos = await loop.getaddrinfo(host, None, type=socket.SOCK_DGRAM)
        except (OSError, TimeoutError):
            log.warning("cannot resolve the TURN server %s; relay candidates through it are dropped", host)
            continue
        addresses.update(info[4][0].split("%", 1)[0] for info in infos)
    return CandidatePolicy.from_config(networks, addresses)


# aiortc 1.15 added RTCConfiguration.iceTransportPolicy; Debian trixie's (the image's) is older, so
# there the kiosk does the same itself (keep_relay_candidates).
NATIVE_RELAY_POLICY = "iceTransportPolicy" in {f.name for f in dataclasses.fields(RTCConfiguration)}


def rtc_configuration(servers: list[m.IceServer], relay_only: bool = False) -> RTCConfiguration:
    # An empty list is deliberate: aiortc falls back to a public STUN server when
    # iceServers is None, which would leak the kiosk's address to a third party.
    extra = {}
    if relay_only and NATIVE_RELAY_POLICY:
        from aiortc import RTCIceTransportPolicy  # only in aiortc >= 1.15
        extra["iceTransportPolicy"] = RTCIceTransportPolicy.RELAY
    return RTCConfiguration(iceServers=[RTCIceServer(urls=s.urls, username=s.username, credential=s.credential)
                                        for s in servers], **extra)


async def keep_relay_candidates(pc: RTCPeerConnection) -> int:
    """iceTransportPolicy "relay" for aiortc before 1.15: gather now, then drop every candidate that is not
    relayed, and the sockets behind them, before the offer is written. Returns how many were dropped.

    The ICE agent (aioice) pairs the other side's candidates with the sockets it keeps, so without its host
    sockets it never sends a check, nor media, past the TURN server. The relay candidate's related address
    (the kiosk's address as the TURN server saw it) is dropped too, as aioice does for the relay policy.
    Reaches into aiortc's and aioice's internals (RTCIceGatherer._connection, Connection._protocols and
    ._local_candidates), unchanged from aiortc 1.9 / aioice 0.9 to aiortc 1.16 / aioice 0.13."""
    gatherers = {id(g): g for g in (t.sender.transport.transport.iceGatherer for t in pc.getTransceivers())}
    dropped = 0
    for gatherer in gatherers.values():
        await gatherer.gather()  # setLocalDescription's own gathering then finds it done
        connection = gatherer._connection
        for protocol in list(connection._protocols):
            if protocol.local_candidate is not None and protocol.local_candidate.type != "relay":
                connection._protocols.remove(protocol)
                if protocol.transport is not None:
                    protocol.transport.close()
        kept = [c for c in connection._local_candidates if c.type == "relay"]
        dropped += len(connection._local_candidates) - len(kept)
        connection._local_candidates[:] = kept
        for candidate in kept:
            candidate.related_address = candidate.related_port = None
    return dropped


class CallPeer:
    """One call's peer connection. ``on_remote_track`` gets the clerk's audio and video."""

    def __init__(self, ice_servers: list[m.IceServer], tracks: list[MediaStreamTrack],
                 on_remote_track: Callable[[MediaStreamTrack], None] | None = None,
                 video_codecs: list | None = None, on_state: Callable[[str], None] | None = None,
                 ice_networks: tuple[str, ...] = DEFAULT_NETWORKS,
                 frames: Callable[[], MediaStreamTrack | None] | None = None, relay_only: bool = False,
                 native_relay_policy: bool = NATIVE_RELAY_POLICY, consent: ConsentTiming = RFC_7675):
        """``video_codecs``: the offer's video codecs in order (:func:`offered_video_codecs`).
        ``frames``: given when the video track yields H.264 packets; opens the camera's frames for
        any other codec the answer picks (None if the camera fails: the call goes on without video).
        ``on_state`` hears "connected" and "failed" as the peer connection reaches them, and
        "video_rejected" when the clerk's browser refused the video (the call has audio only).
        ``ice_networks``: where the clerk's candidates may point (with central's TURN servers).
        ``relay_only``: media only through the TURN server (the kiosk's settings); ``native_relay_policy``
        False makes a newer aiortc do what the image's older one does (tests). ``consent``: the ICE consent
        checks' timing (appliance/call/consent.py; RFC 7675's by default, tests shorten it)."""
        self.pc = RTCPeerConnection(rtc_configuration(ice_servers, relay_only and native_relay_policy))
        self._filter_to_relay = relay_only and not native_relay_policy
        self._ice_servers, self._ice_networks = ice_servers, ice_networks
        self._policy: CandidatePolicy | None = None
        self.dropped_candidates = 0  # a count for tests and the log; never the addresses
        self._on_state = on_state
        self.pc.on("connectionstatechange", self._state_changed)
        self._tracks = list(tracks)
        self._video_codecs = video_codecs or []
        self._frames = frames
        self._video_sender: RTCRtpSender | None = None
        self.audio_sender: RTCRtpSender | None = None
        self.video_codec: str | None = None  # what the answer settled: "video/h264", "video/vp8"; None: no video
        # Audio first: its section is the offer's BUNDLE tag, whose transport carries the whole call. A
        # browser that rejects the video section then keeps the tag; Firefox gathers no candidate at all
        # when the tag it rejected was the video's, and the call would not even have sound.
        for kind in ("audio", "video"):
            sent = [track for track in tracks if track.kind == kind]
            # A device that failed at call start sends nothing, but the clerk is still seen and heard.
            for track in sent or [kind]:
                transceiver = self.pc.addTransceiver(track, direction="sendrecv" if sent else "recvonly")
                if kind == "audio":
                    self.audio_sender = transceiver.sender if sent else None
                else:
                    self._video_sender = transceiver.sender if sent else None
                    if video_codecs:
                        transceiver.setCodecPreferences(video_codecs)
        for transceiver in self.pc.getTransceivers():
            if transceiver.kind == "audio":
                use_for_audio(transceiver.receiver)  # the clerk heard 80 ms sooner (appliance/call/audio_buffer.py)
                use_low_delay_opus(transceiver.sender)  # the citizen heard 4 ms sooner (appliance/call/audio_send.py)
        self._on_remote_track = on_remote_track or self._drain
        self.pc.on("track", bound_playback)  # first: before the decoder thread is given the track's queue
        self.pc.on("track", self._on_remote_track)
        self._drains: set[asyncio.Task] = set()
        self._consent_timing = consent
        self.consent: list[PatientConsent] = []  # the call's ICE consent checks, once the answer came
        self.catch_up: CatchUp | None = None  # how the call's sockets are read, once the answer came

    async def offer(self) -> str:
        """Create the offer; aiortc gathers all candidates first, so the SDP carries them."""
        offer = await self.pc.createOffer()
        if self._filter_to_relay:
            await keep_relay_candidates(self.pc)
        await self.pc.setLocalDescription(offer)
        return self.pc.localDescription.sdp

    async def accept_answer(self, sdp: str) -> None:
        policy = await self._candidate_policy()
        allowed = policy.filter_sdp(sdp)
        self._dropped(sdp.count("a=candidate:") - allowed.count("a=candidate:"))
        # The video is settled before the answer is applied: aiortc's sender pulls from the track once connected.
        video_rejected = rejected_video(allowed)
        if video_rejected:
            log.warning("the clerk's browser refused the video; the call goes on with audio only")
            allowed = accept_rejected_video(allowed, self.pc.localDescription.sdp)
            self._replace_video(None)  # the camera goes off: nobody could see it
        else:
            self.video_codec = sending_codec(allowed, self._video_codecs)
            if self._frames is not None and self.video_codec not in (H264, None):
                log.info("the clerk's browser takes no H.264; sending %s at %dx%d, %d fps from the camera's frames",
                         self.video_codec, FALLBACK_WIDTH, FALLBACK_HEIGHT, FALLBACK_FPS)
                self._replace_video(None)  # the camera gives one track at a time: the packets' stops first
                frames = self._frames()
                if frames is not None:
                    self._replace_video(FallbackVideoTrack(frames, FALLBACK_WIDTH, FALLBACK_HEIGHT, FALLBACK_FPS))
        if not self.consent:  # before aiortc connects: a late answer to a check must not end the call
            self.consent = use_patient_consent(self.pc, self._consent_timing, self._consent_expired)
        if self.catch_up is None:  # stale media dropped unread: a kiosk that falls behind keeps up
            self.catch_up = use_catch_up(self.pc)
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=allowed, type="answer"))
        if video_rejected and self._on_state is not None:
            self._on_state("video_rejected")

    @property
    def video_sender(self) -> RTCRtpSender | None:
        """The sender of the citizen's picture (None when the call started without a camera)."""
        return self._video_sender

    @property
    def video_codecs(self) -> list[RTCRtpCodecCapability]:
        """The offer's video codecs in order (empty: aiortc's own list)."""
        return self._video_codecs

    @property
    def sends_packets(self) -> bool:
        """The camera's H.264 packets pass through to this peer (not frames encoded by aiortc)."""
        return self._frames is not None and self.video_codec == H264

    def replace_video(self, track: MediaStreamTrack | None) -> None:
        """Send ``track`` as the picture instead (None: no picture); the old one is stopped."""
        self._replace_video(track)

    def _replace_video(self, track: MediaStreamTrack | None) -> None:
        for old in [t for t in self._tracks if t.kind == "video"]:
            old.stop()  # the camera stops capturing (or capturing packets)
            self._tracks.remove(old)
        if track is not None:
            self._tracks.append(track)
        if self._video_sender is not None:
            self._video_sender.replaceTrack(track)

    async def add_candidate(self, candidate: m.Candidate) -> None:
        if not candidate.candidate:
            return  # end of candidates: aiortc needs no signal for it
        if not (await self._candidate_policy()).allows(candidate.candidate):
            self._dropped(1)
            return
        parsed: RTCIceCandidate = candidate_from_sdp(candidate.candidate.removeprefix("candidate:"))
        parsed.sdpMid, parsed.sdpMLineIndex = candidate.sdpMid, candidate.sdpMLineIndex
        await self.pc.addIceCandidate(parsed)

    async def _candidate_policy(self) -> CandidatePolicy:
        if self._policy is None:
            self._policy = await candidate_policy(self._ice_networks, self._ice_servers)
        return self._policy

    def _dropped(self, count: int) -> None:
        if count:
            self.dropped_candidates += count
            log.info("dropped %d ICE candidate(s) of the clerk naming addresses outside ice_networks and "
                     "the TURN servers", count)

    def _state_changed(self) -> None:
        if self._on_state is not None and self.pc.connectionState in ("connected", "failed"):
            self._on_state(self.pc.connectionState)

    def _consent_expired(self) -> None:
        """The clerk's side answered no consent check for 30 s: aiortc merely closes the connection
        ("closed", which also follows a hang-up), so the failure is told here."""
        if self._on_state is not None:
            self._on_state("failed")

    def _drain(self, track: MediaStreamTrack) -> None:
        """Consume a remote track nobody displays, so aiortc's receive buffers do not fill."""
        async def run() -> None:
            try:
                while True:
                    await track.recv()
            except MediaStreamError:
                pass
        task = asyncio.get_running_loop().create_task(run())
        self._drains.add(task)
        task.add_done_callback(self._drains.discard)

    async def close(self) -> None:
        late = sum(c.answered_late for c in self.consent)
        if late:  # the kiosk fell behind during the call: how far, for IT (the journal)
            log.info("call: %d of %d ICE consent checks were answered late (slowest %.1f s)", late,
                     sum(c.checks for c in self.consent), max(c.slowest_s for c in self.consent))
        for track in self._tracks:
            track.stop()  # the camera stops capturing: its light goes off with the call
        await self.pc.close()
        behind = self.catch_up and self.catch_up.summary()
        if behind:  # the kiosk fell behind the clerk's packets: how much it dropped, for IT (the journal)
            log.info("%s", behind)
        skipped = sum(decode_skipped(t.receiver) for t in self.pc.getTransceivers() if t.kind == "audio")
        if skipped:
            log.info("call: %d packets of the received voice were skipped: the kiosk decoded or played it more "
                     "slowly than it came", skipped)
        for task in list(self._drains):
            task.cancel()
