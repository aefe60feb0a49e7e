"""The stand-in for the Pi 4's hardware H.264 encoder, in a process of its own (so its CPU is not the kiosk's):
libx264 set up as ``hardware.pi.camera`` sets up picamera2's encoder, each access unit sent over a pipe."""
from __future__ import annotations

import logging
import struct

UNIT_HEADER = "<I?q"  # generation, keyframe, timestamp in µs; then the access unit's bytes


class PipeOutput:
    """picamera2's ``Output`` shape: each access unit goes over a pipe to the kiosk process."""

    needs_pacing = False
    needs_add_stream = False

    def __init__(self, conn, generation: int) -> None:
        self.conn, self.generation = conn, generation

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def outputframe(self, frame: bytes, keyframe: bool = True, timestamp: int | None = None,
                    packet=None, audio: bool = False) -> None:
        if audio or frame is None:
            return
        try:
            self.conn.send_bytes(struct.pack(UNIT_HEADER, self.generation, bool(keyframe), timestamp or 0) + bytes(frame))
        except (BrokenPipeError, OSError):
            pass  # the kiosk went away; the encoder is stopped next


def encoder_main(commands, data) -> None:
    """Process entry point (spawn): the stand-in hardware encoder, started and stopped per call."""
    logging.basicConfig(level=logging.WARNING)
    from appliance.hardware.fake.h264_encoder import FakeH264Encoder

    encoder = None
    try:
        while True:
            try:
                cmd = commands.recv()
            except EOFError:
                break
            if cmd[0] == "start":
                _, generation, width, height, fps, bitrate, fill = cmd
                if encoder is not None:
                    encoder.stop()
                # As hardware.pi.camera sets up picamera2's H264Encoder.
                encoder = FakeH264Encoder(bitrate=bitrate, repeat=True, iperiod=fps, framerate=fps, profile="baseline",
                                          fill=fill)
                encoder.output = PipeOutput(data, generation)
                encoder.width, encoder.height = width, height
                encoder.start()
            elif cmd[0] == "keyframe":  # as V4L2's FORCE_KEY_FRAME on the Pi (hardware.pi.camera)
                if encoder is not None:
                    encoder.request_keyframe()
            elif cmd[0] == "bitrate":  # as V4L2's VIDEO_BITRATE on the Pi (hardware.pi.camera)
                if encoder is not None:
                    encoder.set_bitrate(cmd[1])
            elif cmd[0] == "stop":
                if encoder is not None:
                    encoder.stop()
                    encoder = None
            elif cmd[0] == "exit":
                break
    finally:
        if encoder is not None:
            encoder.stop()
