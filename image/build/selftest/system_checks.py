"""Checks of the system itself: boot, read-only root, partitions, boot count, firewall, accounts,
sockets, and what is reported without being judged."""
from __future__ import annotations

import ipaddress
import os
import time
from pathlib import Path

from checklog import check, report, run


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


def ssh_off() -> None:
    state = run("systemctl", "is-active", "ssh.service", "ssh.socket")
    check("ssh-off-without-key", "active" not in state.split(), state.replace("\n", "/"))


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


def info() -> None:
    report("INFO", "kernel", run("uname", "-r"))
    report("INFO", "uptime", Path("/proc/uptime").read_text().split()[0] + " s")
    devices = [p.read_text().strip() for p in Path("/sys/class/watchdog").glob("*/identity")]
    report("INFO", "watchdog", f"RuntimeWatchdogUSec={run('systemctl', 'show', '-p', 'RuntimeWatchdogUSec', '--value')}, "
           f"devices: {', '.join(devices) or 'none'}")
    report("INFO", "journal", "volatile" if not Path("/var/log/journal").exists() else "persistent /var/log/journal")
    report("INFO", "image", Path("/usr/lib/amtsklingel/image-release").read_text().replace("\n", " ").strip())
    report("INFO", "sd-analyze", run("systemd-analyze", "time").splitlines()[0] if run("systemd-analyze", "time") else "")

