"""The kiosk's side of a call with guests: the pair with the clerk, and one more per guest (a mesh).

The call starts as it always did, a single peer connection with the clerk (appliance/call/peer.py).
When central says a guest joined (``call.participant_joined``, the kiosk offers), :meth:`MeshCall.add_guest`
opens another peer connection to them. The camera and the microphone stay captured once: at the first
guest, the clerk's senders are moved onto a :class:`~appliance.call.fanout.Fanout` of the tracks they
sent, and every guest gets a branch of the same fan-out, so the camera's H.264 (Pi 4) or the VP8 this
kiosk encodes is encoded once for everyone (docs/decisions/0007-three-way-calls.md).

The kiosk's upload stays within a budget (appliance/call/upload.py): whenever the number of peers receiving the
picture changes, the camera's encoder (or the VP8 encoded here) is set to each copy's share.

The clerk's pair is the call: its failure ends the call as before. A guest's pair only comes and goes:
its failure is reported for that guest (``on_guest_state``) and nothing else changes.
"""
from __future__ import annotations

import logging
from collections.abc import Callable

from aiortc import RTCRtpSender
from aiortc.mediastreams import MediaStreamTrack
from aiortc.sdp import SessionDescription

from appliance.call.answer import sending_codec
from appliance.call.fanout import Fanout, forward_keyframe_requests
from appliance.call.mix import SpeakerMix
from appliance.call.peer import H264, CallPeer, offered_video_codecs
from appliance.call.receiver_tap import receiver_for
from appliance.call.upload import UploadBudget, camera_encoder
from protocol import messages as m
from protocol.fleet import DEFAULT_CALL_UPLOAD_KBIT_S

log = logging.getLogger(__name__)

VP8 = "video/vp8"

# (peer id, the tracks to send, the offer's video codecs, the pair's state callback) -> the guest's peer connection
GuestFactory = Callable[[str, list[MediaStreamTrack], list | None, Callable[[str], None]], CallPeer]


def takes_opus(answer: str | None) -> bool:
    """The answer's audio is Opus (aiortc's first choice, and every browser's)."""
    if not answer:
        return False
    for media in SessionDescription.parse(answer).media:
        if media.kind == "audio" and media.port != 0:
            return any(codec.mimeType.lower() == "audio/opus" for codec in media.rtp.codecs)
    return False


def vp8_codecs() -> list:
    return [c for c in RTCRtpSender.getCapabilities("video").codecs if c.mimeType.lower() == VP8]


class MeshCall:
    """One call of the kiosk: ``clerk`` (its :class:`CallPeer`) and a :class:`CallPeer` per guest.

    ``new_guest`` makes a guest's peer connection (the service gives it the call's ICE servers and
    routes what the guest sends to the speaker and the page). ``on_guest_state(peer, state)`` hears
    each guest pair's "connected" and "failed". ``upload_kbit_s``: the call's upload budget (the kiosk's settings)."""

    def __init__(self, clerk: CallPeer, new_guest: GuestFactory, upload_kbit_s: int = DEFAULT_CALL_UPLOAD_KBIT_S) -> None:
        self.clerk = clerk
        self.upload = UploadBudget(upload_kbit_s)
        self._new_guest = new_guest
        self.guests: dict[str, CallPeer] = {}
        self.video: Fanout | None = None
        self.audio: Fanout | None = None
        self._shared = False
        self.mix: SpeakerMix | None = None  # what the speaker plays: the clerk's voice and the guests'
        self._voices_before_clerk: list[tuple[str, MediaStreamTrack, object]] = []
        self.on_guest_state: Callable[[str, str], None] = lambda peer, state: None

    # -- the pair with the clerk: the call as it always was -----------------------------------------------
    async def offer(self) -> str:
        return await self.clerk.offer()

    async def accept_answer(self, sdp: str) -> None:
        await self.clerk.accept_answer(sdp)
        self._share_upload()

    async def add_candidate(self, candidate: m.Candidate) -> None:
        await self.clerk.add_candidate(candidate)

    def hear(self, who: str, track: MediaStreamTrack) -> SpeakerMix | None:
        """A remote voice arrived (``who``: "clerk" or a guest's id). The clerk's starts the speaker's mix,
        returned once for the caller to play; a guest's joins it."""
        if who == "clerk":
            self.mix = SpeakerMix(track)
            for guest, voice, receiver in self._voices_before_clerk:
                self.mix.add(guest, voice, receiver)
            self._voices_before_clerk.clear()
            return self.mix
        guest = self.guests.get(who)
        receiver = receiver_for(guest.pc, track) if guest is not None else None  # decoded in the mix, no thread
        if self.mix is None:
            self._voices_before_clerk.append((who, track, receiver))
        else:
            self.mix.add(who, track, receiver)
        return None

    # -- guests ---------------------------------------------------------------------------------------------
    async def add_guest(self, peer: str) -> str:
        """Open a peer connection to guest ``peer`` (replacing an earlier one to them); its offer's SDP."""
        await self.remove_guest(peer)
        self._share_tracks()
        tracks: list[MediaStreamTrack] = []
        if self.audio is not None:
            tracks.append(self.audio.branch())
        codecs = None
        if self.video is not None:
            tracks.append(self.video.branch())
            # The guest's browser is asked for the codec the picture is already encoded in; VP8 stays
            # offered after H.264 so that the kiosk still sees a guest whose browser has no H.264.
            codecs = offered_video_codecs(True) if self.video.encoder is None else vp8_codecs()
        guest = self._new_guest(peer, tracks, codecs, lambda state: self.on_guest_state(peer, state))
        self.guests[peer] = guest
        for fanout, sender in ((self.audio, guest.audio_sender), (self.video, guest.video_sender)):
            if fanout is not None:
                fanout.pack_for(sender)  # the payloads the clerk's copy was packetised into, not packetised again
        if self.video is not None and guest.video_sender is not None:
            forward_keyframe_requests(guest.video_sender, self.video.request_keyframe)
        self._share_upload()
        return await guest.offer()

    async def accept_guest_answer(self, peer: str, sdp: str) -> None:
        guest = self.guests.get(peer)
        if guest is None:
            log.info("an answer for a guest no longer in the call; ignored")
            return
        if self.audio is not None and self.audio.encoder is not None and not takes_opus(sdp):
            log.warning("a guest's browser takes no Opus; the guest does not hear the citizen")
            if guest.audio_sender is not None:
                guest.audio_sender.replaceTrack(None)
        wanted = self._video_codec()
        codec = sending_codec(sdp, guest.video_codecs)
        if wanted is not None and codec not in (wanted, None):
            # The picture exists once, in one codec; encoding it again for this guest is what the
            # kiosk cannot afford (see the decision record). The guest still hears the citizen.
            log.warning("a guest's browser takes no %s; the guest gets the citizen's voice without the picture",
                        wanted.split("/")[1].upper())
            guest.replace_video(None)
            self._share_upload()
        await guest.accept_answer(sdp)

    async def add_guest_candidate(self, peer: str, candidate: m.Candidate) -> None:
        guest = self.guests.get(peer)
        if guest is not None:
            await guest.add_candidate(candidate)

    async def remove_guest(self, peer: str) -> None:
        """Close the peer connection to ``peer``; the call with everybody else goes on."""
        guest = self.guests.pop(peer, None)
        if self.mix is not None:
            self.mix.remove(peer)
        if guest is not None:
            await guest.close()  # stops its branches: the fan-outs no longer feed it
            self._share_upload()

    def _share_upload(self) -> None:
        """Every copy of the picture at its share of the upload budget (appliance/call/upload.py)."""
        if self.video is not None:  # guests came: one encoder for every copy
            encoder = self.video.encoder if self.video.encoder is not None else camera_encoder(self.video.source)
            peers = sum(1 for peer in (self.clerk, *self.guests.values())
                        if peer.video_sender is not None and peer.video_sender.track is not None)
        else:  # the clerk alone: the camera's H.264 as it is; frames are encoded by aiortc, which follows the clerk
            sender = self.clerk.video_sender
            encoder = camera_encoder(sender.track) if sender is not None and self.clerk.sends_packets else None
            peers = 1
        self.upload.apply(peers, encoder)

    def _video_codec(self) -> str | None:
        if self.video is None:
            return None
        return VP8 if self.video.encoder is not None else H264

    def _share_tracks(self) -> None:
        """At the first guest: the clerk's senders take their media from fan-outs everybody shares."""
        if self._shared:
            return
        self._shared = True
        audio_sender = self.clerk.audio_sender
        if audio_sender is not None and audio_sender.track is not None:
            # Opus (always, with a browser): encoded once for everyone; else each sender encodes its own.
            answer = self.clerk.pc.remoteDescription
            self.audio = Fanout(audio_sender.track, opus=takes_opus(answer.sdp if answer else None))
            audio_sender.replaceTrack(self.audio.branch())
            self.audio.pack_for(audio_sender)
        video_sender, codec = self.clerk.video_sender, self.clerk.video_codec
        source = video_sender.track if video_sender is not None else None
        if source is None or codec is None:
            log.warning("the citizen's picture is not flowing to the clerk (%s); guests get none either",
                        "no camera" if source is None else "no video settled with the clerk")
            return
        if codec == H264 and self.clerk.sends_packets:
            # The camera's packets, as they are: each one the clerk's sender takes goes to the guests too.
            self.video = Fanout(source, tap=True)
        elif codec == VP8:
            # The frames, encoded once here for everyone: the clerk's sender packs them as the guests' do.
            self.video = Fanout(source, vp8=True)
            video_sender.replaceTrack(self.video.branch())
        else:
            log.warning("the clerk gets %s encoded from frames; guests get no picture", codec)
            return
        self.video.pack_for(video_sender)
        forward_keyframe_requests(video_sender, self.video.request_keyframe)

    async def close(self) -> None:
        for peer in list(self.guests):
            await self.remove_guest(peer)
        for fanout in (self.video, self.audio):
            if fanout is not None:
                await fanout.close()
        await self.clerk.close()  # stops the camera and the microphone: the fan-outs' sources
