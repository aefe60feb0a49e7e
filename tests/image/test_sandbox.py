"""What the units' sandboxes rest on, tried with the real programs.

Not the whole unit (that is the boot test's job, with systemd itself), but the two
restrictions most likely to break the programs: memory-deny-write-execute for the
appliance, and no privileges at all for Chromium's own sandbox.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile

import pytest

from tests.image import imageroot, mdwe
from tests.image.imageroot import REPO

# A WebRTC call between two aiortc peers in this process, as the appliance makes them:
# prints the connection state it ends in.
CALL = """
import asyncio, json, sys
from aiortc import RTCConfiguration, RTCPeerConnection
from aiortc.mediastreams import AudioStreamTrack

if sys.argv[1] == "mdwe":
    from tests.image import mdwe
    mdwe.enable()

async def main():
    a, b = (RTCPeerConnection(RTCConfiguration(iceServers=[])) for _ in range(2))
    a.addTrack(AudioStreamTrack())
    b.on("track", lambda track: None)
    await a.setLocalDescription(await a.createOffer())
    await b.setRemoteDescription(a.localDescription)
    await b.setLocalDescription(await b.createAnswer())
    await a.setRemoteDescription(b.localDescription)
    for _ in range(100):
        if a.connectionState in ("connected", "failed"):
            break
        await asyncio.sleep(0.1)
    state = a.connectionState
    await a.close(); await b.close()
    print(json.dumps(state))

asyncio.run(main())
"""


def _call(mode: str) -> tuple[str, str]:
    result = subprocess.run([sys.executable, "-c", CALL, mode], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout), result.stderr


def test_appliance_cannot_take_memory_deny_write_execute_yet():
    """Why amtsklingel-appliance.service has no MemoryDenyWriteExecute=yes.

    aiortc's DTLS goes through pyOpenSSL, which makes cffi callbacks in writable and
    executable memory. Should this test fail because the call connects, the reason is gone:
    turn MemoryDenyWriteExecute=yes on in the unit and in test_units.py.
    """
    if not mdwe.supported():
        pytest.skip("this kernel has no PR_SET_MDWE (Linux 6.3 or newer)")
    assert _call("plain")[0] == "connected"
    state, log = _call("mdwe")
    assert state != "connected", "aiortc now works under MemoryDenyWriteExecute: switch it on for the appliance"
    assert "write+execute memory" in log


def test_chromium_sandboxes_itself_without_privileges():
    """Chromium as an ordinary user with no_new_privs and an empty capability bounding set,
    as in amtsklingel-kiosk.service, with its sandbox on (no --no-sandbox). Chromium refuses
    to run without a working sandbox, and no_new_privs rules out the setuid helper, so a page
    rendered means the user-namespace sandbox works."""
    imageroot.require_root()
    chromium = imageroot.require("chromium")
    setpriv = imageroot.require("setpriv")
    home = tempfile.mkdtemp(prefix="kiosk-")
    try:
        os.chown(home, 65534, 65534)
        result = subprocess.run(
            [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", "--no-new-privs", "--bounding-set=-all",
             "--inh-caps=-all", "env", f"HOME={home}", chromium, "--headless", "--disable-gpu",
             f"--user-data-dir={home}/profile", "--dump-dom", "data:text/html,<p>kiosk%20sandbox%20ok</p>"],
            capture_output=True, text=True, timeout=90)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    assert "kiosk sandbox ok" in result.stdout, result.stderr[-2000:]
    assert "No usable sandbox" not in result.stderr


def test_the_kiosk_policy_holds_in_chromium():
    """Debian's Chromium with image/config/chromium-policy.json as its managed policy (in
    private mount and network namespaces, tests/image/policyprobe.py): only the local page loads."""
    imageroot.require_root()
    imageroot.require("chromium")
    allowed = ["http://127.0.0.1:8000/", "http://127.0.0.1:8000/static/kiosk.js"]
    blocked = ["http://127.0.0.2:8000/", "http://localhost:8000/", "http://127.0.0.1:8001/", "https://example.org/",
               "file:///etc/passwd", "data:text/html,<p id=ok>x</p>", "chrome://settings/", "chrome://version/",
               "chrome://policy/", "chrome-untrusted://terminal/", "view-source:http://127.0.0.1:8000/"]
    result = subprocess.run(["unshare", "--mount", "--net", "--propagation", "private", sys.executable, "-m",
                             "tests.image.policyprobe", str(REPO / "image/config/chromium-policy.json"),
                             *allowed, *blocked], capture_output=True, text=True, cwd=REPO, timeout=180)
    assert result.returncode == 0, result.stderr[-3000:]
    outcome = json.loads(result.stdout)
    assert {url: outcome[url] for url in allowed} == dict.fromkeys(allowed, "loaded")
    assert {url: outcome[url] for url in blocked} == dict.fromkeys(blocked, "net::ERR_BLOCKED_BY_ADMINISTRATOR")


@pytest.mark.parametrize("unit", ["amtsklingel-appliance.service", "amtsklingel-kiosk.service"])
def test_the_reasons_are_written_in_the_units(unit):
    text = (REPO / "systemd" / unit).read_text()
    assert "# Not MemoryDenyWriteExecute=:" in text
