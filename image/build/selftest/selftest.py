#!/usr/bin/python3
"""The image's self-test, run at boot only under ``./build.sh image-test`` (amtsklingel.selftest=1).

Each check prints one line to the console, ``AMTSKLINGEL-SELFTEST PASS|FAIL|INFO <name>: <detail>``;
the boot test on the host reads them from QEMU's serial port. The first FAIL ends the test, with
what systemd and the journal say between ``DIAG begin`` and ``DIAG end``. Then the machine
powers off.
Standard library only: it must not depend on what it checks.
"""
from __future__ import annotations

import ipaddress
import json
import os
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

TAG = "AMTSKLINGEL-SELFTEST"
ENV = Path("/usr/lib/amtsklingel/selftest/selftest.env")
READY_TIMEOUT_S = 600
ONLINE_TIMEOUT_S = 300
results: list[tuple[str, str, str]] = []


def report(status: str, name: str, detail: str = "") -> None:
    results.append((status, name, detail))
    print(f"{TAG} {status} {name}: {detail}", flush=True)


def check(name: str, ok: bool, detail: str = "") -> None:
    report("PASS" if ok else "FAIL", name, detail)


def run(*cmd: str, timeout: float = 900) -> str:
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    return (done.stdout + done.stderr).strip()


def settings() -> dict[str, str]:
    values = {}
    for line in ENV.read_text().splitlines():
        key, _, value = line.partition("=")
        values[key.strip()] = value.strip()
    return values


def boot_state() -> None:
    started = time.monotonic()
    state = run("systemctl", "is-system-running", "--wait")
    report("INFO", "boot-wait", f"{time.monotonic() - started:.0f} s after the self-test started")
    failed = run("systemctl", "list-units", "--failed", "--plain", "--no-legend", "--no-pager")
    check("system-running", state == "running", state)
    check("no-failed-units", not failed, failed.replace("\n", "; ") or "none")
    jobs = run("systemctl", "list-jobs", "--no-legend", "--no-pager")
    if jobs:
        report("INFO", "pending-jobs", jobs.replace("\n", "; "))


def read_only_root() -> None:
    options = run("findmnt", "-no", "OPTIONS", "/")
    check("root-read-only", "ro" in options.split(","), options)
    probe = Path("/selftest-write-probe")
    try:
        probe.write_text("x")
    except OSError as exc:
        check("root-refuses-writes", True, exc.strerror or str(exc))
    else:
        probe.unlink()
        check("root-refuses-writes", False, "a file could be created in /")
    # Where the running system writes: memory (a tmpfs at that path or above it).
    for path in ("/tmp", "/var/tmp", "/var/log", "/var/lib"):
        found = run("findmnt", "-no", "FSTYPE,TARGET", "--target", path).split()
        check(f"in-memory:{path}", found[:1] == ["tmpfs"], " on ".join(found) or "?")


def partitions() -> None:
    """The layout the update agent and provisioning rely on: boot and data found by GPT name."""
    for mountpoint, fstype, label in (("/boot/firmware", "vfat", "boot"), ("/var/lib/amtsklingel", "ext4", "data")):
        found = run("findmnt", "-no", "FSTYPE,SOURCE", mountpoint).split()
        source_label = run("lsblk", "-no", "PARTLABEL", found[1]) if len(found) > 1 else ""
        check(f"mounted:{mountpoint}", found[:1] == [fstype] and source_label == label,
              f"{' '.join(found) or 'not mounted'} (partition {source_label or '?'})")
    # The data partition is made on the first boot by systemd-repart from the image's definition.
    definition = Path("/usr/lib/repart.d/50-amtsklingel-data.conf").read_text()
    wanted_type = next((line.split("=", 1)[1].strip().lower() for line in definition.splitlines()
                        if line.startswith("Type=")), "?")
    data = run("findmnt", "-no", "SOURCE", "/var/lib/amtsklingel")
    if data.startswith("/dev/"):
        part_type, size = run("lsblk", "-bdno", "PARTTYPE,SIZE", data).split()
        disk = run("lsblk", "-no", "PKNAME", data)
        disk_size = int(run("lsblk", "-bdno", "SIZE", f"/dev/{disk}") or 0)
        check("data-partition-by-repart", part_type.lower() == wanted_type,
              f"{data}: type {part_type}, {int(size) >> 20} MiB on a {disk_size >> 20} MiB disk")
    else:
        check("data-partition-by-repart", False, f"/var/lib/amtsklingel is not on a disk partition ({data or 'not mounted'})")
    root = run("findmnt", "-no", "SOURCE", "/")
    report("INFO", "root-slot", f"{root} (partition {run('lsblk', '-no', 'PARTLABEL', root) if root.startswith('/dev/') else '?'})")


def _monotonic_s(unit: str, prop: str) -> float | None:
    value = run("systemctl", "show", unit, "-p", prop, "--value")
    return int(value) / 1e6 if value.isdigit() and int(value) else None


def first_boot_partitions() -> None:
    """The first boot makes the partition table final (grow-disk, systemd-repart) before a
    partition of the disk is waited for; the data partition is mounted only after repart."""
    times = {}
    for unit in ("amtsklingel-grow-disk.service", "systemd-repart.service"):
        start = _monotonic_s(unit, "ExecMainStartTimestampMonotonic")
        end = _monotonic_s(unit, "ExecMainExitTimestampMonotonic")
        times[unit] = (start, end)
    data_device = run("systemd-escape", "--path", "--suffix=device", "/dev/disk/by-partlabel/data")
    mounted = _monotonic_s("var-lib-amtsklingel.mount", "ActiveEnterTimestampMonotonic")
    appeared = _monotonic_s(data_device, "ActiveEnterTimestampMonotonic")
    boot_mounted = _monotonic_s("boot-firmware.mount", "ActiveEnterTimestampMonotonic")

    def span(unit: str) -> str:
        start, end = times[unit]
        return f"{start:.1f}-{end:.1f} s ({end - start:.1f} s)" if start and end else "did not run"
    report("INFO", "first-boot-partitioning", f"grow-disk {span('amtsklingel-grow-disk.service')}, "
           f"repart {span('systemd-repart.service')}, boot partition mounted at {boot_mounted or 0:.1f} s, "
           f"data partition appeared at {appeared or 0:.1f} s, mounted at {mounted or 0:.1f} s (since boot)")
    repart_end = times["systemd-repart.service"][1]
    check("data-mounted-after-repart", bool(mounted and repart_end and mounted >= repart_end),
          f"repart finished at {repart_end or 0:.1f} s, data mounted at {mounted or 0:.1f} s")


def boot_counted() -> None:
    """This boot was counted when it began and, the appliance being ready, counted as good."""
    deadline = time.monotonic() + 60
    state = ""
    while time.monotonic() < deadline:
        state = run("systemctl", "is-active", "amtsklingel-boot-healthy.service")
        if state in ("active", "failed"):
            break
        time.sleep(2)
    count = Path("/boot/firmware/boot-count")
    value = count.read_text().strip() if count.exists() else "missing"
    check("boot-count-reset", state == "active" and value == "0",
          f"amtsklingel-boot-healthy.service {state}, /boot/firmware/boot-count {value}")


def diagnose() -> None:
    """After a failure: what systemd and the journal say, for the boot test's log."""
    print(f"{TAG} DIAG begin", flush=True)
    for title, cmd in (("failed units", ("systemctl", "list-units", "--failed", "--plain", "--no-legend", "--no-pager")),
                       ("jobs", ("systemctl", "list-jobs", "--no-legend", "--no-pager")),
                       ("journal, warnings and worse", ("journalctl", "-b", "-p", "warning", "-n", "60", "--no-pager",
                                                        "-o", "short-monotonic"))):
        print(f"--- {title}", flush=True)
        print(run(*cmd, timeout=60) or "(none)", flush=True)
    print(f"{TAG} DIAG end", flush=True)


def firewall() -> None:
    ruleset = run("nft", "list", "ruleset")
    has_input = "hook input" in ruleset
    drops = any("hook input" in line and "policy drop" in line for line in ruleset.splitlines())
    check("nftables-loaded", has_input, f"{len(ruleset.splitlines())} lines")
    check("nftables-input-default-drop", drops, "input chain policy drop" if drops else "no input chain with policy drop")


def no_passwords() -> None:
    bad = []
    for line in Path("/etc/shadow").read_text().splitlines():
        user, field = line.split(":")[:2]
        if field in ("", ) or not field.startswith(("!", "*")) or "$" in field:
            bad.append(user)
    check("no-password-hashes", not bad, ", ".join(bad) or "every account locked, none with a hash")


def _sockets(path: str, tcp: bool) -> list[tuple[str, str]]:
    """(description, socket inode) of every listening (TCP) or unconnected (UDP) socket on a
    non-loopback address in a /proc/net table."""
    listening = []
    try:
        lines = Path(path).read_text().splitlines()[1:]
    except FileNotFoundError:
        return []
    for line in lines:
        fields = line.split()
        local, remote, state, inode = fields[1], fields[2], fields[3], fields[9]
        if tcp and state != "0A":          # LISTEN
            continue
        if not tcp and set(remote.split(":")[0]) != {"0"}:   # a connected client socket
            continue
        addr_hex, port_hex = local.split(":")
        raw = bytes.fromhex(addr_hex)
        if len(raw) == 4:
            addr = ipaddress.IPv4Address(raw[::-1])
        else:
            addr = ipaddress.IPv6Address(b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4)))
        if not addr.is_loopback:
            listening.append((f"{'tcp' if tcp else 'udp'} {addr}:{int(port_hex, 16)}", inode))
    return listening


def _socket_owners() -> dict[str, str]:
    """Socket inode -> name of the process holding it."""
    owners = {}
    for fd_dir in Path("/proc").glob("[0-9]*/fd"):
        try:
            comm = (fd_dir.parent / "comm").read_text().strip()
            for fd in fd_dir.iterdir():
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    owners[target[8:-1]] = comm
        except OSError:
            continue
    return owners


# The DHCP clients' own sockets: systemd-networkd receives its lease renewals (DHCPv4, port 68)
# and DHCPv6 replies (port 546) on them. They answer no one; nftables lets in only replies.
DHCP_CLIENT_PORTS = {("udp", 68), ("udp", 546)}


def loopback_only() -> None:
    found = []
    for name, tcp in (("tcp", True), ("tcp6", True), ("udp", False), ("udp6", False)):
        found += _sockets(f"/proc/net/{name}", tcp)
    owners = _socket_owners()
    exposed, dhcp = [], []
    for desc, inode in found:
        proto, port = desc.split()[0], int(desc.rsplit(":", 1)[1])
        owner = owners.get(inode, "?")
        if (proto, port) in DHCP_CLIENT_PORTS and owner == "systemd-network":  # comm is cut at 15 characters
            dhcp.append(desc)
        else:
            exposed.append(f"{desc} ({owner})")
    check("nothing-listens-beyond-loopback", not exposed, ", ".join(exposed) or "only loopback")
    if dhcp:
        report("INFO", "dhcp-client-sockets", ", ".join(dhcp))


def ssh_off() -> None:
    state = run("systemctl", "is-active", "ssh.service", "ssh.socket")
    check("ssh-off-without-key", "active" not in state.split(), state.replace("\n", "/"))


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


def _kiosk_view(port: int, timeout: float) -> dict:
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
            view = _kiosk_view(port, timeout=10)
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


def info() -> None:
    report("INFO", "kernel", run("uname", "-r"))
    report("INFO", "uptime", Path("/proc/uptime").read_text().split()[0] + " s")
    devices = [p.read_text().strip() for p in Path("/sys/class/watchdog").glob("*/identity")]
    report("INFO", "watchdog", f"RuntimeWatchdogUSec={run('systemctl', 'show', '-p', 'RuntimeWatchdogUSec', '--value')}, "
           f"devices: {', '.join(devices) or 'none'}")
    report("INFO", "journal", "volatile" if not Path("/var/log/journal").exists() else "persistent /var/log/journal")
    report("INFO", "image", Path("/usr/lib/amtsklingel/image-release").read_text().replace("\n", " ").strip())
    report("INFO", "sd-analyze", run("systemd-analyze", "time").splitlines()[0] if run("systemd-analyze", "time") else "")


def _central_host() -> str:
    """central_url's host name from the enrolled settings (root may read them)."""
    settings_file = Path("/var/lib/amtsklingel/appliance.toml")
    for line in settings_file.read_text().splitlines() if settings_file.exists() else []:
        key, _, value = line.partition("=")
        if key.strip() == "central_url":
            return urllib.parse.urlsplit(value.strip().strip('"')).hostname or ""
    return ""


def main() -> int:
    print(f"{TAG} START", flush=True)
    env = settings()
    unit = env.get("APPLIANCE_UNIT", "")
    central_host = _central_host()
    steps = [boot_state, read_only_root, partitions, first_boot_partitions, firewall, no_passwords, ssh_off,
             lambda: appliance(unit), boot_counted, kiosk_page, lambda: network(central_host), central_visit,
             loopback_only, kiosk_screen, info]
    for step in steps:
        try:
            step()
        except Exception as exc:  # a broken check is a failed one
            report("FAIL", getattr(step, "__name__", "check"), f"{type(exc).__name__}: {exc}")
        # Stop at the first failure: later checks would wait minutes for what cannot come (a
        # visit without a data partition), and the first failure is the one to explain.
        if any(status == "FAIL" for status, _, _ in results):
            diagnose()
            break
    failed = sum(1 for status, _, _ in results if status == "FAIL")
    passed = sum(1 for status, _, _ in results if status == "PASS")
    print(f"{TAG} DONE {passed} passed, {failed} failed", flush=True)
    if os.environ.get("AMTSKLINGEL_SELFTEST_NO_POWEROFF") != "1":
        subprocess.run(["systemctl", "poweroff", "--no-block"], check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
