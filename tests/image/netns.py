"""Throwaway network namespaces for firewall tests, joined by a veth cable.

Each namespace is held open by a ``sleep`` started under ``unshare --net``; commands run
inside it through ``nsenter``. The test session's own namespace is never changed.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time

from tests.image import imageroot

# One TCP connection attempt from inside a namespace: prints "connected", "refused" or "timeout".
CONNECT = """
import socket, sys
try:
    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=float(sys.argv[3])).close()
    print("connected")
except ConnectionRefusedError:
    print("refused")
except TimeoutError:
    print("timeout")
"""
# Accept connections on every address (IPv4 and IPv6) of the given ports until killed.
LISTEN = """
import selectors, socket, sys
sel = selectors.DefaultSelector()
for port in map(int, sys.argv[1:]):
    s = socket.create_server(("::", port), family=socket.AF_INET6, dualstack_ipv6=True)
    sel.register(s, selectors.EVENT_READ)
print("listening", flush=True)
while True:
    for key, _ in sel.select():
        key.fileobj.accept()[0].close()
"""


class Netns:
    def __init__(self) -> None:
        self._holder = subprocess.Popen(["unshare", "--net", "sleep", "600"])
        self.path = f"/proc/{self._holder.pid}/ns/net"
        own = os.readlink("/proc/self/ns/net")
        deadline = time.monotonic() + 5
        while os.readlink(self.path) == own:  # unshare has not switched yet
            if time.monotonic() > deadline:
                raise RuntimeError("unshare --net did not create a namespace")
            time.sleep(0.01)
        self.run("ip", "link", "set", "lo", "up")
        self._listeners: list[subprocess.Popen] = []

    @property
    def pid(self) -> int:
        return self._holder.pid

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return imageroot.run("nsenter", f"--net={self.path}", *args, check=check)

    def listen(self, *ports: int) -> None:
        proc = subprocess.Popen(["nsenter", f"--net={self.path}", sys.executable, "-c", LISTEN, *map(str, ports)],
                                stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "listening"
        self._listeners.append(proc)

    def connect(self, host: str, port: int, timeout: float = 0.5) -> str:
        return self.run(sys.executable, "-c", CONNECT, host, str(port), str(timeout)).stdout.strip()

    def close(self) -> None:
        for proc in [*self._listeners, self._holder]:
            proc.kill()
            proc.wait()


def cable(a: Netns, b: Netns) -> None:
    """A veth pair between ``a`` (192.0.2.1, 2001:db8::1) and ``b`` (192.0.2.2, 2001:db8::2)."""
    a.run("ip", "link", "add", "veth0", "type", "veth", "peer", "name", "veth0", "netns", str(b.pid))
    for ns, n in ((a, 1), (b, 2)):
        ns.run("ip", "addr", "add", f"192.0.2.{n}/24", "dev", "veth0")
        ns.run("ip", "-6", "addr", "add", f"2001:db8::{n}/64", "dev", "veth0", "nodad")
        ns.run("ip", "link", "set", "veth0", "up")
