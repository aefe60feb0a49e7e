"""Two sites behind NAT, made by the test: network namespaces, veth pairs and nftables masquerade.

::

    kiosk host 10.1.0.2 -- NAT router 100.64.1.2 --+
                                                   +-- "wan": this test's own namespace, 100.64.0.1
    clerk host 10.2.0.2 -- NAT router 100.64.2.2 --+       (coturn and central listen here);
                                                           anything else goes to a namespace that drops it

The wan namespace forwards nothing, so each site reaches 100.64.0.1 and nothing of the other site:
there is no direct path between kiosk and clerk, only the relay. The wan is the namespace the test
runs in, which must be tools/netns-run's loopback-only one (never the machine's own network), so
every address here is one the test made; everything is deleted again afterwards.

Code runs inside a site through :class:`NetnsLoop` (an event loop on a thread that entered the
site's namespace: every socket it opens is the site's) or as a process through ``ip netns exec``.
"""
from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import shutil
import subprocess
import threading
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import pytest

WAN = "100.64.0.1"  # shared address space (RFC 6598): neither private LAN nor a public address
CLONE_NEWNET = 0x40000000
T = TypeVar("T")


@dataclass(frozen=True)
class Site:
    netns: str     # the host's namespace (kiosk or clerk)
    router: str    # its NAT router's namespace
    address: str   # the host's private address
    public: str    # the router's address towards the wan: what the other side would see


def require_root_and_tools() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root: the test makes network namespaces, veth pairs and NAT rules "
                    "(./build.sh test runs as root)")
    missing = [tool for tool in ("ip", "nft") if not shutil.which(tool)]
    if missing:
        pytest.fail(f"{', '.join(missing)} missing: ./build.sh test installs iproute2 and nftables")


def sh(*args: str, input: str | None = None) -> None:
    result = subprocess.run(args, input=input, capture_output=True, text=True)
    if result.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed: {result.stderr.strip()}")


def _ipv4_only(netns: str) -> None:
    """No IPv6 in a site: the sites speak IPv4, and an IPv6 link-local address that turns valid a second
    after its link came up (duplicate address detection) is a network change to a browser started there,
    which aborts the page it is loading with ERR_NETWORK_CHANGED."""
    if os.path.exists("/proc/sys/net/ipv6"):
        sh("ip", "netns", "exec", netns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1",
           "net.ipv6.conf.default.disable_ipv6=1")


def _site(prefix: str, name: str, number: int) -> Site:
    host, router = f"{prefix}-{name}", f"{prefix}-{name}-nat"
    uplink = f"{prefix}{name[0]}"  # the wan's end of the router's link (15 characters at most)
    site = Site(host, router, f"10.{number}.0.2", f"100.64.{number}.2")
    sh("ip", "netns", "add", router)
    sh("ip", "netns", "add", host)
    for netns in (router, host):
        _ipv4_only(netns)
    sh("ip", "link", "add", uplink, "type", "veth", "peer", "name", "wan", "netns", router)
    sh("ip", "addr", "add", f"100.64.{number}.1/24", "dev", uplink)
    sh("ip", "link", "set", uplink, "up")
    sh("ip", "-n", router, "link", "set", "lo", "up")
    sh("ip", "-n", router, "addr", "add", f"{site.public}/24", "dev", "wan")
    sh("ip", "-n", router, "link", "set", "wan", "up")
    sh("ip", "-n", router, "route", "add", "default", "via", f"100.64.{number}.1")
    sh("ip", "-n", router, "link", "add", "lan", "type", "veth", "peer", "name", "eth0", "netns", host)
    sh("ip", "-n", router, "addr", "add", f"10.{number}.0.1/24", "dev", "lan")
    sh("ip", "-n", router, "link", "set", "lan", "up")
    sh("ip", "netns", "exec", router, "sysctl", "-qw", "net.ipv4.ip_forward=1")
    # The village router: everything from the site leaves with the router's address (masquerade).
    sh("ip", "netns", "exec", router, "nft", "-f", "-", input=(
        'table ip nat {\n chain postrouting {\n  type nat hook postrouting priority srcnat;\n'
        '  oifname "wan" masquerade\n }\n}\n'))
    sh("ip", "-n", host, "link", "set", "lo", "up")
    sh("ip", "-n", host, "addr", "add", f"{site.address}/24", "dev", "eth0")
    sh("ip", "-n", host, "link", "set", "eth0", "up")
    sh("ip", "-n", host, "route", "add", "default", "via", f"10.{number}.0.1")
    _ipv4_only(host)  # eth0 was made in the router's namespace and moved here: its own setting too
    return site


@contextlib.contextmanager
def nat_sites() -> Iterator[tuple[Site, Site]]:
    """(kiosk site, clerk site), both reaching only :data:`WAN`; torn down afterwards."""
    if os.environ.get("AMTSKLINGEL_NETNS") != "1":
        pytest.fail("the NAT test builds its wan in the test's own namespace: run it under tools/netns-run")
    prefix = f"ak{os.getpid() % 100000}"
    forward = "/proc/sys/net/ipv4/ip_forward"
    with open(forward) as f:
        forwarding = f.read().strip()
    made: list[str] = []
    try:
        with open(forward, "w") as f:
            f.write("0")  # the wan passes nothing from one site to the other
        sh("ip", "addr", "add", f"{WAN}/32", "dev", "lo")
        # As on the internet, packets to addresses nobody routes (a site's private ones) vanish quietly:
        # without a route the sender would get an error at once, and coturn gives up the relay on it.
        # (A blackhole route answers EINVAL, and this kernel may lack dummy devices: a namespace that
        # forwards nothing swallows them.)
        void = f"{prefix}-void"
        made.append(void)
        sh("ip", "netns", "add", void)
        sh("ip", "link", "add", f"{prefix}v", "type", "veth", "peer", "name", "void", "netns", void)
        sh("ip", "addr", "add", "100.64.255.1/30", "dev", f"{prefix}v")
        sh("ip", "link", "set", f"{prefix}v", "up")
        sh("ip", "-n", void, "addr", "add", "100.64.255.2/30", "dev", "void")
        sh("ip", "-n", void, "link", "set", "void", "up")
        sh("ip", "netns", "exec", void, "sysctl", "-qw", "net.ipv4.ip_forward=0")
        sh("ip", "route", "add", "default", "via", "100.64.255.2")
        kiosk = _site(prefix, "kiosk", 1)
        made += [kiosk.netns, kiosk.router]
        clerk = _site(prefix, "clerk", 2)
        made += [clerk.netns, clerk.router]
        yield kiosk, clerk
    finally:
        # The wan's ends of the links first: a namespace lives on while anything (a socket) still holds it,
        # and with it the veth pair, but deleting one end deletes the pair at once.
        for link in (f"{prefix}k", f"{prefix}c", f"{prefix}v"):
            subprocess.run(["ip", "link", "del", link], capture_output=True)
        for netns in made + [f"{prefix}-{n}" for n in ("void", "kiosk", "kiosk-nat", "clerk", "clerk-nat")]:
            subprocess.run(["ip", "netns", "del", netns], capture_output=True)  # its veth ends go with it
        subprocess.run(["ip", "addr", "del", f"{WAN}/32", "dev", "lo"], capture_output=True)
        with open(forward, "w") as f:
            f.write(forwarding)


def _enter(netns: str) -> None:
    fd = os.open(f"/run/netns/{netns}", os.O_RDONLY)
    try:
        if hasattr(os, "setns"):  # Python 3.12 on
            os.setns(fd, CLONE_NEWNET)
            return
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns into {netns}: {os.strerror(err)}")
    finally:
        os.close(fd)


class NetnsLoop:
    """An event loop on a thread of its own inside ``netns``: what it runs opens its sockets there.

    A network namespace belongs to a thread, not the process; threads this one starts (the loop's
    executor, a WSGI server's) inherit it, so the rest of the test stays where it was.
    """

    def __init__(self, netns: str):
        self.loop = asyncio.new_event_loop()
        entered: list[BaseException | None] = []
        ready = threading.Event()

        def run() -> None:
            try:
                _enter(netns)
                entered.append(None)
            except BaseException as exc:  # noqa: BLE001 - handed to the test's thread
                entered.append(exc)
                return
            finally:
                ready.set()
            asyncio.set_event_loop(self.loop)
            self.loop.run_forever()

        self.thread = threading.Thread(target=run, name=f"netns-{netns}", daemon=True)
        self.thread.start()
        ready.wait(10)
        if not entered or entered[0] is not None:
            raise AssertionError(f"cannot enter network namespace {netns}: {entered[0] if entered else 'timeout'}")

    async def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self.loop))

    def close(self) -> None:
        if self.loop.is_running():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
        self.loop.close()
