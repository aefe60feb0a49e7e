"""A real coturn (Debian's ``coturn`` package) for tests: started with its own configuration in a temp
dir, time-limited credentials only (use-auth-secret), stopped and its files gone afterwards.

Never a public TURN server: it listens on the address the test names (loopback, or an address of a
network namespace the test made).
"""
from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

TURNSERVER = "/usr/bin/turnserver"
SECRET = "c0ffee-test-secret-0123456789abcdef"
REALM = "amtsklingel.test"
READY_S = 15.0


@dataclass(frozen=True)
class Turn:
    address: str
    port: int
    secret: str
    log: Path

    @property
    def url(self) -> str:
        return f"turn:{self.address}:{self.port}?transport=udp"

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def require_coturn() -> None:
    if not shutil.which(TURNSERVER):
        pytest.fail(f"{TURNSERVER} is missing: ./build.sh test installs Debian's coturn package")


def free_udp_port(address: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((address, 0))
        return s.getsockname()[1]


def stun_answers(address: str, port: int) -> bool:
    """True once the server answers a STUN binding request (RFC 5389: type 0x0001, magic cookie)."""
    request = bytes.fromhex("0001" "0000" "2112a442") + os.urandom(12)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(0.3)
        try:
            s.sendto(request, (address, port))
            answer = s.recv(2048)
        except OSError:
            return False
    return answer[:2] == bytes.fromhex("0101") and answer[8:20] == request[8:20]


@contextlib.contextmanager
def coturn(tmp: Path, address: str = "127.0.0.1", *, loopback_peers: bool = False,
           secret: str = SECRET, prefix: list[str] | None = None) -> Iterator[Turn]:
    """coturn listening and relaying on ``address``. ``prefix``: e.g. ``ip netns exec NAME`` to run it
    in another network namespace (then ``address`` must be reachable from the test for the ready check)."""
    require_coturn()
    tmp.mkdir(parents=True, exist_ok=True)
    port = free_udp_port(address) if prefix is None else 3478
    log = tmp / "turnserver.log"
    conf = tmp / "turnserver.conf"
    lines = [f"listening-ip={address}", f"relay-ip={address}", f"listening-port={port}",
             "min-port=40000", "max-port=40999",
             "use-auth-secret", f"static-auth-secret={secret}", f"realm={REALM}", "fingerprint",
             "no-tls", "no-dtls", "no-cli", "no-tcp-relay", "no-multicast-peers", "no-software-attribute",
             f"userdb={tmp / 'turndb'}", f"pidfile={tmp / 'turnserver.pid'}", f"log-file={log}", "simple-log",
             "no-stdout-log", "verbose"]
    if loopback_peers:
        lines.append("allow-loopback-peers")  # the test's peers sit on loopback
    conf.write_text("\n".join(lines) + "\n")
    process = subprocess.Popen([*(prefix or []), TURNSERVER, "-c", str(conf)], stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + READY_S
        while not stun_answers(address, port):
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"coturn did not start on {address}:{port}:\n{tail(log)}")
            time.sleep(0.1)
        yield Turn(address, port, secret, log)
    finally:
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
