#!/usr/bin/python3
"""The image's self-test, run at boot only under ``./build.sh image-test`` (amtsklingel.selftest=1).

Each check prints one line to the console, ``AMTSKLINGEL-SELFTEST PASS|FAIL|INFO <name>: <detail>``;
the boot test on the host reads them from QEMU's serial port. Then the machine powers off.
Standard library only: it must not depend on what it checks.
"""
from __future__ import annotations

import ipaddress
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

TAG = "AMTSKLINGEL-SELFTEST"
ENV = Path("/usr/lib/amtsklingel/selftest/selftest.env")
READY_TIMEOUT_S = 600
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
    root = run("findmnt", "-no", "SOURCE", "/")
    report("INFO", "root-slot", f"{root} (partition {run('lsblk', '-no', 'PARTLABEL', root) if root.startswith('/dev/') else '?'})")


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


def _sockets(path: str, tcp: bool) -> list[str]:
    listening = []
    try:
        lines = Path(path).read_text().splitlines()[1:]
    except FileNotFoundError:
        return []
    for line in lines:
        fields = line.split()
        local, remote, state = fields[1], fields[2], fields[3]
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
            listening.append(f"{'tcp' if tcp else 'udp'} {addr}:{int(port_hex, 16)}")
    return listening


def loopback_only() -> None:
    exposed = []
    for name, tcp in (("tcp", True), ("tcp6", True), ("udp", False), ("udp6", False)):
        exposed += _sockets(f"/proc/net/{name}", tcp)
    check("nothing-listens-beyond-loopback", not exposed, ", ".join(exposed) or "only loopback")


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


def info() -> None:
    report("INFO", "kernel", run("uname", "-r"))
    report("INFO", "uptime", Path("/proc/uptime").read_text().split()[0] + " s")
    devices = [p.read_text().strip() for p in Path("/sys/class/watchdog").glob("*/identity")]
    report("INFO", "watchdog", f"RuntimeWatchdogUSec={run('systemctl', 'show', '-p', 'RuntimeWatchdogUSec', '--value')}, "
           f"devices: {', '.join(devices) or 'none'}")
    report("INFO", "journal", "volatile" if not Path("/var/log/journal").exists() else "persistent /var/log/journal")
    report("INFO", "image", Path("/usr/lib/amtsklingel/image-release").read_text().replace("\n", " ").strip())
    report("INFO", "sd-analyze", run("systemd-analyze", "time").splitlines()[0] if run("systemd-analyze", "time") else "")


def main() -> int:
    print(f"{TAG} START", flush=True)
    unit = settings().get("APPLIANCE_UNIT", "")
    steps = [boot_state, read_only_root, partitions, firewall, no_passwords, ssh_off,
             lambda: appliance(unit), kiosk_page, loopback_only, kiosk_screen, info]
    for step in steps:
        try:
            step()
        except Exception as exc:  # one broken check must not hide the others
            report("FAIL", getattr(step, "__name__", "check"), f"{type(exc).__name__}: {exc}")
    failed = sum(1 for status, _, _ in results if status == "FAIL")
    passed = sum(1 for status, _, _ in results if status == "PASS")
    print(f"{TAG} DONE {passed} passed, {failed} failed", flush=True)
    if os.environ.get("AMTSKLINGEL_SELFTEST_NO_POWEROFF") != "1":
        subprocess.run(["systemctl", "poweroff", "--no-block"], check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
