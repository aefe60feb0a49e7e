"""Which addresses an ICE candidate may name: the one rule, for central and the appliance alike.

A candidate tells the other side's browser or ICE agent "send packets to this
address and port". Relayed unchecked, one peer can make the other probe any
address reachable from its network: a cloud metadata service (169.254.169.254),
a printer, a router's admin page. So every candidate is checked against a
:class:`CandidatePolicy` before it is passed on or used:

- its address must be an IP literal (IPv4 or IPv6) inside the configured
  networks, or, for a ``relay`` candidate, one of the TURN servers' addresses;
- link-local, multicast, unspecified, broadcast, reserved and documentation-only
  addresses are refused even when a configured network covers them;
- mDNS names (``*.local``) and any other host name are refused: there is no LAN
  discovery in the product, and a name would make the receiver resolve it;
- ports below 1024 are refused (media never uses them), except the placeholder
  port 9 of an active TCP candidate, which is never connected to (RFC 6544);
- anything not matching the RFC 8839 grammar is refused.

The related address (``raddr``/``rport``) is never contacted (RFC 8445 uses it
for diagnostics only), so it is checked for form, not for place.

This module imports nothing of central or the appliance: both call it.
"""
from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import unquote

from protocol.errors import AmtsklingelError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# A city's own networks when it configures none: private ranges and loopback.
DEFAULT_NETWORKS = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7", "127.0.0.0/8", "::1/128")

# Never a media peer, whatever the configuration says.
ALWAYS_REFUSED = tuple(ipaddress.ip_network(n) for n in (
    "0.0.0.0/8",           # "this network", unspecified
    "169.254.0.0/16",      # link-local, including the cloud metadata address 169.254.169.254
    "224.0.0.0/4",         # multicast
    "240.0.0.0/4",         # reserved, and 255.255.255.255 (broadcast)
    "192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24",  # documentation
    "::/128",              # unspecified
    "fe80::/10",           # link-local
    "fec0::/10",           # site-local (deprecated)
    "ff00::/8",            # multicast
    "2001:db8::/32",       # documentation
    "fd00:ec2::254/128",   # a cloud metadata address inside fc00::/7
))

CANDIDATE_TYPES = frozenset({"host", "srflx", "prflx", "relay"})
TRANSPORTS = frozenset({"udp", "tcp"})
TCP_ACTIVE_PLACEHOLDER_PORT = 9
LOWEST_PORT = 1024

_ICE_CHARS = re.compile(r"^[A-Za-z0-9+/]{1,32}$")
_TOKEN = re.compile(r"^[!#$%&'*+\-.0-9A-Z^_`a-z{|}~]+$")  # RFC 8866 token
_BYTE_STRING = re.compile(r"^[^\x00\r\n ]+$")
_DIGITS = re.compile(r"^[0-9]{1,10}$")
_HOST_NAME = re.compile(r"^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$")


class CandidateError(AmtsklingelError, ValueError):
    """A candidate that does not follow the RFC 8839 grammar. Callers drop it."""


class NetworkListError(AmtsklingelError, ValueError):
    """A configured list of networks (ice_networks) cannot be used as written."""


@dataclass(frozen=True)
class Candidate:
    """The parts of one ``candidate:`` attribute that matter for the decision."""

    foundation: str
    component: int
    transport: str  # lower case
    priority: int
    address: str    # as written: an IP literal, or a name (then refused)
    port: int
    type: str
    related_address: str | None = None
    related_port: int | None = None
    tcp_type: str | None = None


def parse(line: str) -> Candidate:
    """Parse ``candidate:...`` (with or without a leading ``a=``). Raises :class:`CandidateError`."""
    text = line[2:] if line.startswith("a=") else line
    if not text.startswith("candidate:"):
        raise CandidateError("not a candidate attribute")
    fields = text[len("candidate:"):].split(" ")
    if len(fields) < 8 or "" in fields:
        raise CandidateError("a candidate has at least eight fields separated by single spaces")
    foundation, component, transport, priority, address, port, typ, kind, *rest = fields
    if not _ICE_CHARS.match(foundation):
        raise CandidateError("foundation")
    if not _DIGITS.match(component) or not 1 <= int(component) <= 256:
        raise CandidateError("component id")
    if not _TOKEN.match(transport):
        raise CandidateError("transport")
    if not _DIGITS.match(priority) or not 1 <= int(priority) <= 2**31 - 1:
        raise CandidateError("priority")
    if not _BYTE_STRING.match(address):
        raise CandidateError("connection address")
    port_number = _port(port)
    if typ != "typ" or not _TOKEN.match(kind):
        raise CandidateError("candidate type")
    related_address = related_port = tcp_type = None
    if rest[:1] == ["raddr"]:
        if len(rest) < 4 or rest[2] != "rport" or not _BYTE_STRING.match(rest[1]):
            raise CandidateError("raddr comes with rport")
        related_address, related_port, rest = rest[1], _port(rest[3], allow_zero=True), rest[4:]
    if len(rest) % 2:
        raise CandidateError("extensions come in name and value pairs")
    for name, value in zip(rest[::2], rest[1::2]):
        if not _TOKEN.match(name) or not _BYTE_STRING.match(value) or name in ("raddr", "rport", "typ"):
            raise CandidateError("extension")
        if name == "tcptype":
            tcp_type = value
    return Candidate(foundation, int(component), transport.lower(), int(priority), address, port_number, kind,
                     related_address, related_port, tcp_type)


def _port(text: str, *, allow_zero: bool = False) -> int:
    if not _DIGITS.match(text) or not (0 if allow_zero else 1) <= int(text) <= 65535:
        raise CandidateError("port")
    return int(text)


def ip_literal(text: str) -> IPAddress | None:
    """The address an IP literal names (IPv4-mapped IPv6 as IPv4), or None for names and zoned addresses."""
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address):
        if address.scope_id is not None:
            return None
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
    return address


def _embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """IPv4 addresses reachable through an IPv6 one by translation (6to4, NAT64's well-known prefix)."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.sixtofour is not None:
            return address.sixtofour
        if address in _NAT64:
            return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def always_refused(address: IPAddress) -> bool:
    embedded = _embedded_ipv4(address)
    return any(address in net for net in ALWAYS_REFUSED if net.version == address.version) or (
        embedded is not None and always_refused(embedded))


def parse_networks(networks: Iterable[str]) -> tuple[IPNetwork, ...]:
    """CIDR strings to networks. Raises NetworkListError (a ValueError) with a message a person can act on."""
    out = []
    for text in networks:
        if not isinstance(text, str):
            raise NetworkListError(f"{text!r} is not a string; write networks as \"10.0.0.0/8\"")
        try:
            network = ipaddress.ip_network(text, strict=True)
        except ValueError as exc:
            loose = _loose_network(text)
            hint = f"; did you mean {loose}?" if loose else "; write a network as \"10.0.0.0/8\" or \"fd00::/8\""
            raise NetworkListError(f"{text!r} is not a network ({exc}){hint}") from None
        if any(network.subnet_of(net) for net in ALWAYS_REFUSED if net.version == network.version):
            raise NetworkListError(f"{text} lies inside addresses that are never allowed (link-local, multicast, "
                             "documentation, unspecified); remove it")
        out.append(network)
    return tuple(out)


def _loose_network(text: str) -> str | None:
    try:
        return str(ipaddress.ip_network(text, strict=False))
    except ValueError:
        return None


@dataclass(frozen=True)
class CandidatePolicy:
    """Where candidates may point: ``networks`` for any type, ``relay_addresses`` for relay candidates."""

    networks: tuple[IPNetwork, ...]
    relay_addresses: frozenset[IPAddress] = frozenset()

    @classmethod
    def from_config(cls, networks: Iterable[str] = DEFAULT_NETWORKS,
                    relay_addresses: Iterable[str] = ()) -> CandidatePolicy:
        relays = frozenset(a for a in (ip_literal(r) for r in relay_addresses) if a is not None)
        return cls(parse_networks(networks), relays)

    def allows_address(self, address: IPAddress, candidate_type: str) -> bool:
        if always_refused(address):
            return False
        if candidate_type == "relay" and address in self.relay_addresses:
            return True
        return any(address in net for net in self.networks if net.version == address.version)

    def allows(self, line: str) -> bool:
        """True if the candidate ``line`` may be passed on; malformed candidates are not."""
        try:
            candidate = parse(line)
        except CandidateError:
            return False
        if candidate.transport not in TRANSPORTS or candidate.type not in CANDIDATE_TYPES:
            return False
        related = candidate.related_address
        if related is not None and ip_literal(related) is None and not _HOST_NAME.match(related):
            return False  # never contacted, so only its form matters (browsers may write an mDNS name)
        address = ip_literal(candidate.address)
        if address is None:
            return False  # mDNS .local and other names
        placeholder = (candidate.transport == "tcp" and candidate.tcp_type == "active"
                       and candidate.port == TCP_ACTIVE_PLACEHOLDER_PORT)
        if candidate.port < LOWEST_PORT and not placeholder:
            return False
        return self.allows_address(address, candidate.type)

    def allows_trickled(self, candidate: str | None) -> bool:
        """For a trickled candidate: the empty end-of-candidates marker always passes."""
        return not candidate or self.allows(candidate)

    def filter_sdp(self, sdp: str) -> str:
        """The SDP without the candidate lines this policy refuses.

        Also removes ``a=remote-candidates`` (never used between browsers and aiortc, and
        it names addresses too) and points a refused ``c=`` connection address at the
        unspecified address, as trickle ICE does. Everything else is kept byte for byte.
        """
        newline = "\r\n" if "\r\n" in sdp else "\n"
        kept = []
        for line in sdp.split(newline):
            if line.startswith("a=candidate:") and not self.allows(line):
                continue
            if line.startswith("a=remote-candidates:"):
                continue
            if line.startswith("c="):
                line = self._connection_line(line)
            kept.append(line)
        return newline.join(kept)

    def _connection_line(self, line: str) -> str:
        parts = line[2:].split(" ")
        if len(parts) != 3 or parts[0] != "IN" or parts[1] not in ("IP4", "IP6"):
            return line
        unspecified = "0.0.0.0" if parts[1] == "IP4" else "::"
        address = ip_literal(parts[2].split("/", 1)[0])
        if address is not None and (address.is_unspecified or self.allows_address(address, "host")):
            return line
        return f"c=IN {parts[1]} {unspecified}"


def turn_hosts(urls: Iterable[str]) -> list[str]:
    """The hosts (names or IP literals) of ``turn:``/``turns:`` URLs (RFC 7065), in order, without repeats."""
    hosts: list[str] = []
    for url in urls:
        scheme, _, rest = url.partition(":")
        if scheme.lower() not in ("turn", "turns"):
            continue
        rest = rest.split("?", 1)[0]
        if rest.startswith("["):
            host = rest[1:].split("]", 1)[0]
        else:
            host = rest.rsplit(":", 1)[0] if rest.count(":") == 1 else rest
        host = unquote(host).strip().lower()
        if host and host not in hosts:
            hosts.append(host)
    return hosts
