"""Checks of the kiosk: the appliance's unit, its page and screen, the network to central, and a
citizen's visit reaching central's waiting room. The page's event stream says what the screen shows."""
from __future__ import annotations

import json
import os
import socket
import time
import urllib.request
from pathlib import Path

from checklog import check, report, run

READY_TIMEOUT_S = 600
ONLINE_TIMEOUT_S = 300
PAGE_PORT = 8000


def appliance(unit: str) -> None:
    if not unit:
        check("appliance-ready", False, "no appliance unit found in the image (image/config/MANIFEST)")
        return
    deadline = time.monotonic() + READY_TIMEOUT_S
    props: dict[str, str] = {}
    while time.monotonic() < deadline:
        out = run("systemctl", "show", unit, "-p", "ActiveState,SubState,StatusText,Type,NRestarts,WatchdogUSec,User")
        props = dict(line.partition("=")[::2] for line in out.splitlines())
        if props.get("ActiveState") == "active" and "kiosk page" in props.get("StatusText", ""):
            break
        if props.get("ActiveState") == "failed":
            break
        time.sleep(2)
    ready = props.get("ActiveState") == "active" and "kiosk page" in props.get("StatusText", "")
    check("appliance-ready", ready, f"{unit} {props.get('ActiveState')}/{props.get('SubState')}, "
          f"status {props.get('StatusText')!r}, restarts {props.get('NRestarts')}")
    report("INFO", "appliance-unit", f"Type={props.get('Type')} WatchdogUSec={props.get('WatchdogUSec')} "
           f"User={props.get('User') or 'root'}")
    if not ready:
        print(run("journalctl", "-u", unit, "-n", "30", "--no-pager", "-o", "cat"), flush=True)


def kiosk_page(port: int = 8000) -> None:
    url = f"http://127.0.0.1:{port}/"
    for _ in range(30):
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                body = response.read()
                check("kiosk-page-answers", response.status == 200, f"{url} -> {response.status}, {len(body)} bytes")
                return
        except OSError as exc:
            error = exc
            time.sleep(2)
    check("kiosk-page-answers", False, f"{url}: {error}")


def kiosk_screen() -> None:
    """The browser needs a screen (QEMU's virtio GPU); reported, not judged: TCG makes it slow."""
    out = run("systemctl", "show", "amtsklingel-kiosk.service", "-p", "ActiveState,SubState,NRestarts")
    props = dict(line.partition("=")[::2] for line in out.splitlines())
    running = set()
    for comm in Path("/proc").glob("[0-9]*/comm"):
        try:
            name = comm.read_text().strip()
        except OSError:
            continue
        if name in ("cage", "chromium"):
            running.add(name)
    report("INFO", "kiosk-screen", f"{props.get('ActiveState')}/{props.get('SubState')}, restarts "
           f"{props.get('NRestarts')}; running: {', '.join(sorted(running)) or 'neither cage nor chromium'}")


def network(central_host: str) -> None:
    """The town hall's network as the boot test provides it: DHCP, DNS, a route to central."""
    deadline = time.monotonic() + 120
    links = ""
    while time.monotonic() < deadline:
        links = run("networkctl", "list", "--no-legend", "--no-pager")
        if any(line.split()[3:4] == ["routable"] for line in links.splitlines()):
            break
        time.sleep(2)
    ether = [line.split() for line in links.splitlines() if "ether" in line.split()]
    check("network-dhcp", any(f[3:5] == ["routable", "configured"] for f in ether),
          "; ".join(" ".join(f[1:5]) for f in ether) or "no Ethernet link")
    lease = run("networkctl", "status", "--no-pager", "--lines=0", ether[0][1]) if ether else ""
    for line in lease.splitlines():
        if line.strip().startswith(("Address:", "Gateway:", "DNS:")):
            report("INFO", "network", " ".join(line.split()))
    resolv = os.path.realpath("/etc/resolv.conf")
    servers = [line.split()[1] for line in Path("/etc/resolv.conf").read_text().splitlines()
               if line.startswith("nameserver")]
    check("dns-through-loopback-stub", servers == ["127.0.0.53"], f"{resolv}: nameserver {' '.join(servers)}")
    try:
        found = sorted({info[4][0] for info in socket.getaddrinfo(central_host, 443, proto=socket.IPPROTO_TCP)})
        check("dns-resolves-central", bool(found), f"{central_host} -> {', '.join(found)}")
    except OSError as exc:
        check("dns-resolves-central", False, f"{central_host}: {exc}")


def kiosk_view(port: int, timeout: float) -> dict:
    """The first view the kiosk page's event stream sends (what the screen shows now)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/events", timeout=timeout) as stream:
        for raw in stream:
            line = raw.decode().strip()
            if line.startswith("data: "):
                return json.loads(line[len("data: "):])
    raise OSError("event stream ended without a view")


def _action(port: int, name: str, value: str | None = None) -> None:
    body = json.dumps({"action": name} | ({"value": value} if value is not None else {})).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{port}/action", data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        if response.status != 204:
            raise OSError(f"action {name}: HTTP {response.status}")


def _wait_view(port: int, ok, timeout_s: float) -> dict:
    deadline = time.monotonic() + timeout_s
    view: dict = {}
    while time.monotonic() < deadline:
        try:
            view = kiosk_view(port, timeout=10)
            if ok(view):
                return view
        except OSError:
            pass
        time.sleep(1)
    return view


def central_visit(port: int = 8000) -> None:
    """Enrolled with a real token, the unit connects to central; a citizen's visit reaches its
    waiting room (position 1) and leaves it again: the button's whole path, without the button."""
    view = _wait_view(port, lambda v: v.get("online") and v.get("departments"), ONLINE_TIMEOUT_S)
    open_departments = [d["slug"] for d in view.get("departments", []) if d.get("open")]
    check("central-online", bool(view.get("online")),
          f"location {view.get('location')!r}, {len(view.get('departments', []))} departments, "
          f"{len(open_departments)} open; screen {view.get('screen')}, fault {view.get('fault')}")
    if not view.get("online") or not open_departments:
        check("central-visit", False, "no connection to central or no open department")
        return
    # Touching a department on the start screen (the button would step through them).
    _action(port, "choose", open_departments[0])
    _wait_view(port, lambda v: v.get("screen") == "consent", 30)
    _action(port, "confirm")
    waiting = _wait_view(port, lambda v: v.get("screen") == "waiting" and v.get("position"), 60)
    check("central-visit", waiting.get("screen") == "waiting" and waiting.get("position") == 1,
          f"{open_departments[0]}: screen {waiting.get('screen')}, position {waiting.get('position')}, "
          f"expected wait {waiting.get('expected_wait_s')} s")
    _action(port, "cancel")
    idle = _wait_view(port, lambda v: v.get("screen") in ("idle", "ended"), 60)
    check("central-visit-cancelled", idle.get("screen") in ("idle", "ended"), f"screen {idle.get('screen')}")

