"""The Pi 4 camera inside a bench kiosk process: the stand-in hardware encoder (``standin_encoder``) in a
process of its own, and a "camera thread" handing its access units to the call's ``EncodedVideoTrack``, as
picamera2's thread does on the Pi (appliance/hardware/pi/camera.py). Used by bench kiosk_call and three_way."""
from __future__ import annotations

import multiprocessing
import struct
import threading

from bench._kiosk_call.standin_encoder import UNIT_HEADER, encoder_main


class StandinCamera:
    """Started once per kiosk process; :meth:`open` gives each call a fresh track from a fresh encoder."""

    def __init__(self) -> None:
        mp = multiprocessing.get_context("spawn")
        self._commands, commands_child = mp.Pipe()
        data_parent, data_child = mp.Pipe(duplex=False)
        self._encoder = mp.Process(target=encoder_main, args=(commands_child, data_child),
                                   name="bench-standin-encoder", daemon=True)
        self._encoder.start()
        commands_child.close()
        data_child.close()
        self._data = data_parent
        self.track = None
        self._generation = 0  # units of an encoder started for an earlier call are not this call's
        threading.Thread(target=self._read, name="encoded-reader", daemon=True).start()

    @property
    def pid(self) -> int:
        """The encoder's process (its CPU is the Pi's hardware encoder's: not the kiosk's)."""
        return self._encoder.pid

    def open(self, width: int, height: int, fps: int, bitrate: int, *, pad: bool = False):
        """A new ``EncodedVideoTrack`` fed by an encoder set up as ``hardware.pi.camera`` sets up the Pi's;
        stopping the track stops the encoder, and the call can lower and raise its bitrate (the upload budget,
        appliance/call/upload.py) as on the Pi. ``pad``: each access unit is padded with a filler NAL unit to
        the share of a frame of the bitrate the encoder is set to now (``FakeH264Encoder(fill=True)``: the test
        pattern alone compresses to a tenth of it, where a camera's picture of a person takes all of it, and
        what the kiosk spends per peer grows with the bytes sent)."""
        from appliance.hardware.encoded import EncodedVideoTrack

        self._generation += 1
        track = EncodedVideoTrack(on_stop=self._stop)
        track.on_keyframe_request = lambda: self._send(("keyframe",))  # as V4L2's FORCE_KEY_FRAME on the Pi
        track.on_bitrate_request = lambda value: self._send(("bitrate", value))  # as V4L2's VIDEO_BITRATE
        track.max_bitrate = track.bitrate = bitrate
        self.track = track
        self._send(("start", self._generation, width, height, fps, bitrate, pad))
        return track

    def close(self) -> None:
        self._send(("exit",))
        self._encoder.join(timeout=10)
        if self._encoder.is_alive():
            self._encoder.kill()

    def _stop(self) -> None:
        self._send(("stop",))

    def _send(self, command: tuple) -> None:
        try:
            self._commands.send(command)
        except (BrokenPipeError, OSError):
            pass  # the encoder is gone; the bench reports the missing picture

    def _read(self) -> None:
        header = struct.calcsize(UNIT_HEADER)
        while True:
            try:
                blob = self._data.recv_bytes()
            except (EOFError, OSError):
                return
            generation, keyframe, timestamp_us = struct.unpack_from(UNIT_HEADER, blob)
            track = self.track
            if track is None or generation != self._generation:
                continue
            track.put(blob[header:], keyframe, timestamp_us)
