"""``./build.sh demo`` (tools/demo.py) as a process manager or a closed terminal stops it: central and
the kiosk stop with it and their ports are free again; killed outright, its children die with it."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
STARTUP_S = 90.0  # central and the appliance import aiortc, numpy and av on a busy machine


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def answers(url: str) -> bool:
    try:
        urllib.request.urlopen(url, timeout=1).close()
        return True
    except OSError:
        return False


def port_free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def start_demo(tmp: Path, *, options: bool = False, extra: tuple[str, ...] = ()) -> tuple[subprocess.Popen, int, int,
                                                                                    set[int]]:
    """The demo on free ports, given on the command line or (as ./build.sh passes them) in the environment.
    Its temporary directory goes under ``tmp`` (a killed launcher cannot remove it)."""
    port, kiosk_port = free_port(), free_port()
    ports = {"AMTSKLINGEL_DEMO_PORT": str(port), "AMTSKLINGEL_DEMO_KIOSK_PORT": str(kiosk_port)}
    args = ["--port", str(port), "--kiosk-port", str(kiosk_port)] if options else []
    demo = subprocess.Popen([sys.executable, "tools/demo.py", *args, *extra], cwd=ROOT, stdout=subprocess.DEVNULL,
                            env={**os.environ, **({} if options else ports), "TMPDIR": str(tmp)},
                            start_new_session=True)  # signals reach the launcher only, as from a process manager
    deadline = time.monotonic() + STARTUP_S
    while not (answers(f"http://127.0.0.1:{port}/api/status") and answers(f"http://127.0.0.1:{kiosk_port}/")):
        if demo.poll() is not None or time.monotonic() > deadline:
            for pid in descendants(demo.pid) | {demo.pid}:
                os.kill(pid, signal.SIGKILL)
            pytest.fail(f"the demo did not come up (exit status {demo.poll()})")
        time.sleep(0.3)
    children = descendants(demo.pid)
    assert len(children) >= 2  # central and the kiosk
    return demo, port, kiosk_port, children


def assert_all_gone(children: set[int], *ports: int) -> None:
    deadline = time.monotonic() + 20
    while any(alive(pid) for pid in children) or not all(port_free(p) for p in ports):
        if time.monotonic() > deadline:
            survivors = sorted(pid for pid in children if alive(pid))
            busy = [p for p in ports if not port_free(p)]
            pytest.fail(f"still running: {survivors}; ports in use: {busy}")
        time.sleep(0.2)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT], ids=lambda s: s.name)
def test_a_stop_signal_stops_central_and_the_kiosk(sig, tmp_path):
    demo, port, kiosk_port, children = start_demo(tmp_path)
    try:
        demo.send_signal(sig)
        assert demo.wait(40) == 0
        assert_all_gone(children, port, kiosk_port)
        assert list(tmp_path.iterdir()) == []  # its temporary directory is gone too
    finally:
        for pid in children | {demo.pid}:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_a_killed_launcher_takes_its_children_along(tmp_path):
    demo, port, kiosk_port, children = start_demo(tmp_path)
    try:
        demo.kill()
        demo.wait(10)
        assert_all_gone(children, port, kiosk_port)
    finally:
        for pid in children:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_ports_can_be_chosen_on_the_command_line(tmp_path):
    demo, port, kiosk_port, children = start_demo(tmp_path, options=True)
    try:
        demo.terminate()
        assert demo.wait(40) == 0
        assert_all_gone(children, port, kiosk_port)
    finally:
        for pid in children | {demo.pid}:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_with_enrol_the_kiosk_shows_a_code_to_claim(tmp_path):
    demo, port, kiosk_port, children = start_demo(tmp_path, extra=("--enrol",))
    try:
        deadline = time.monotonic() + STARTUP_S
        with urllib.request.urlopen(f"http://127.0.0.1:{kiosk_port}/events", timeout=STARTUP_S) as events:
            while time.monotonic() < deadline:
                line = events.readline().decode()
                if line.startswith("data: "):
                    view = json.loads(line[6:])
                    if view["screen"] == "enrol" and view["enrol"]["code"]:
                        break
            else:
                pytest.fail("the demo's kiosk showed no enrolment code")
        assert view["enrol"]["claim_url"] == f"http://localhost:{port}/admin/kiosks/enrol?code={view['enrol']['code']}"
    finally:
        demo.send_signal(signal.SIGTERM)
        demo.wait(30)
    assert_all_gone(children, port, kiosk_port)


def test_the_demo_has_a_signed_bundle_of_a_next_version(tmp_path):
    demo, port, kiosk_port, children = start_demo(tmp_path)
    try:
        [workdir] = tmp_path.glob("amtsklingel-demo-*")
        listed = subprocess.run([sys.executable, "-m", "central", "--config", str(workdir / "central.toml"), "bundles",
                                 "list"], cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert listed.returncode == 0, listed.stderr
        assert listed.stdout.startswith("1\t") and "-next\t" in listed.stdout and "demo city" in listed.stdout
    finally:
        demo.send_signal(signal.SIGTERM)
        demo.wait(30)
    assert_all_gone(children, port, kiosk_port)


def test_the_demo_takes_appointments_at_the_standesamt(tmp_path):
    demo, port, kiosk_port, children = start_demo(tmp_path)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/booking/office/standesamt?lang=en", timeout=10) as r:
            page = r.read().decode()
        assert 'name="start"' in page and "Book this time" in page
    finally:
        demo.terminate()
        demo.wait(40)
        for pid in children | {demo.pid}:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
