"""The USB camera backend on a real V4L2 device: the kernel's virtual camera ``vivid``.

Runs wherever vivid is loaded (the QEMU image test loads it; on a machine without kernel modules
``tools/kernel-vm -- .venv/bin/python -m pytest tests/appliance/test_v4l2_vivid.py`` boots a kernel
that has it); elsewhere it skips, saying so.
"""
import asyncio
import glob
import os
from pathlib import Path

import av
import pytest

from appliance.hardware.errors import CameraError
from appliance.hardware.pi.v4l2 import ioctls
from appliance.hardware.pi.v4l2.camera import UsbCamera, list_devices
from appliance.hardware.pi.v4l2.capture import Capture
from appliance.hardware.pi.v4l2.choose import Wanted, choose_mode
from appliance.hardware.pi.v4l2.devices import parse_listing, skip_reason

DATA = Path(__file__).parent / "data" / "v4l2"


def vivid_capture_nodes() -> list[str]:
    found = []
    for path in sorted(glob.glob("/dev/video*")):
        try:
            info = ioctls.describe(path)
        except OSError:
            continue
        if info.driver == "vivid" and skip_reason(info) is None:
            found.append(path)
    return found


VIVID = vivid_capture_nodes()
pytestmark = pytest.mark.skipif(not VIVID, reason="no vivid module on this machine (no /dev/video* of driver vivid; "
                                                  "`modprobe vivid` makes one; tools/kernel-vm runs these tests under a kernel with it)")


def sizes(info, fourcc):
    return {(s.width, s.height): s.rates for f in info.formats if f.fourcc == fourcc for s in f.sizes}


def test_the_kernel_describes_vivid_as_the_recording_does():
    kernel = ioctls.describe(VIVID[0])
    recorded = parse_listing((DATA / "vivid.txt").read_text(), VIVID[0])
    assert (kernel.driver, kernel.card) == ("vivid", "vivid")
    for fourcc in ("YUYV", "NV12"):
        assert sizes(kernel, fourcc) == sizes(recorded, fourcc)
    assert choose_mode(kernel, Wanted(), encoded=False) == choose_mode(recorded, Wanted(), encoded=False)


def test_a_capture_delivers_whole_frames():
    mode = choose_mode(ioctls.describe(VIVID[0]), Wanted(), encoded=False)
    capture = Capture(VIVID[0], mode)
    try:
        capture.start()
        frames = [capture.read() for _ in range(3)]
    finally:
        capture.close()
    assert all(len(data) >= capture.bytesperline * capture.height for data, _ in frames)
    assert frames[0][1] < frames[1][1] < frames[2][1]


async def test_the_camera_is_found_by_capability_and_sends_frames():
    assert any(d.driver == "vivid" for d in list_devices())
    camera = UsbCamera(Wanted(), VIVID[0])
    try:
        assert camera.name.startswith("V4L2 vivid (") and not camera.encoded
        track = camera.track()
        frames = [await asyncio.wait_for(track.recv(), 5) for _ in range(3)]
        assert all(isinstance(f, av.VideoFrame) and (f.width, f.height) == (640, 360) for f in frames)
        assert frames[0].pts < frames[1].pts < frames[2].pts
    finally:
        camera.close()


VIVID_DRIVER = Path("/sys/bus/platform/drivers/vivid")


def unbind_vivid() -> list[str]:
    """The driver lets go of the device under the open node, as a pulled USB cable does."""
    bound = [entry.name for entry in VIVID_DRIVER.glob("vivid.*")]
    for name in bound:
        (VIVID_DRIVER / "unbind").write_text(name)
    return bound


def bind_vivid(names: list[str]) -> None:
    for name in names:
        (VIVID_DRIVER / "bind").write_text(name)


async def test_pulled_out_during_a_call_ends_the_track_with_camera_error_and_it_comes_back():
    if not os.access(VIVID_DRIVER / "unbind", os.W_OK):
        pytest.skip("unplugging vivid (unbinding its driver) needs root")
    camera = UsbCamera(Wanted(), "auto")
    track = camera.track()
    await asyncio.wait_for(track.recv(), 5)
    bound = unbind_vivid()
    try:
        with pytest.raises(CameraError, match="disconnected"):
            for _ in range(100):
                await asyncio.wait_for(track.recv(), 5)
        assert not camera.present()
        with pytest.raises(CameraError, match="no usable USB camera"):
            camera.track()
    finally:
        bind_vivid(bound)
    for _ in range(50):  # udev-less: the node is back as soon as the driver is bound again
        if camera.present():
            break
        await asyncio.sleep(0.1)
    again = camera.track()
    assert isinstance(await asyncio.wait_for(again.recv(), 5), av.VideoFrame)
    camera.close()
