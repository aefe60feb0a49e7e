"""The candidate rule (protocol/candidates.py): which addresses ICE candidates may name."""
from __future__ import annotations

import ipaddress

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from protocol.candidates import (
    ALWAYS_REFUSED,
    DEFAULT_NETWORKS,
    CandidateError,
    CandidatePolicy,
    parse,
    parse_networks,
    turn_hosts,
)

POLICY = CandidatePolicy.from_config(DEFAULT_NETWORKS, relay_addresses=["100.64.0.10", "2a01:4f8::10"])
EVERYWHERE = CandidatePolicy.from_config(["0.0.0.0/0", "::/0"])
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def line(address, port=54400, typ="host", transport="udp", tail=""):
    return f"candidate:842163049 1 {transport} 1677729535 {address} {port} typ {typ}{tail}"


# -- real candidates, as browsers and aiortc write them ---------------------------------------------------

@pytest.mark.parametrize("candidate", [
    "candidate:842163049 1 udp 1677729535 192.168.1.5 55332 typ host generation 0 ufrag abcd network-cost 999",
    "candidate:1 1 UDP 2130706431 10.0.0.2 50000 typ host",  # aiortc writes the transport in capitals
    "candidate:3 1 tcp 1518280447 192.168.1.5 9 typ host tcptype active generation 0 network-id 1",
    "candidate:4 1 udp 1686052607 10.20.30.40 61000 typ srflx raddr 0.0.0.0 rport 0 generation 0",
    "candidate:5 1 udp 1686052607 10.20.30.40 61000 typ srflx raddr 1b4e9b0c-7a3f.local rport 51234",
    "candidate:6 1 udp 41885439 100.64.0.10 49200 typ relay raddr 10.20.30.40 rport 61000 generation 0",
    "candidate:7 1 udp 41885439 2a01:4f8::10 49200 typ relay raddr :: rport 0",
    "candidate:8 2 udp 2122260222 fd12:3456::1 50001 typ host",
    "candidate:9 1 udp 2122260223 127.0.0.1 54400 typ host",
    "a=candidate:10 1 udp 2122260223 ::1 54400 typ host",
])
def test_ordinary_candidates_in_the_citys_networks_pass(candidate):
    assert POLICY.allows(candidate)


@pytest.mark.parametrize(("candidate", "why"), [
    (line("169.254.169.254", 80), "the cloud metadata address, as found in the review"),
    (line("169.254.169.254"), "link-local, on any port"),
    (line("::ffff:169.254.169.254"), "the same, written as IPv4-mapped IPv6"),
    (line("fd00:ec2::254"), "a cloud metadata address inside fc00::/7"),
    (line("2002:a9fe:a9fe::1", typ="host"), "6to4 wrapping of the metadata address"),
    (line("64:ff9b::a9fe:a9fe"), "NAT64 wrapping of the metadata address"),
    (line("fe80::1"), "IPv6 link-local"),
    (line("fe80::1%eth0"), "zoned address"),
    (line("224.0.0.251"), "multicast"),
    (line("ff02::fb"), "IPv6 multicast"),
    (line("0.0.0.0"), "unspecified"),
    (line("::"), "IPv6 unspecified"),
    (line("255.255.255.255"), "broadcast"),
    (line("8.8.8.8"), "a public address outside the configured networks"),
    (line("100.64.0.10"), "the TURN server's address, but not as a relay candidate"),
    (line("10.0.0.5", 22), "a privileged port inside the city's network"),
    (line("10.0.0.5", 9), "port 9 is a placeholder only for active TCP candidates"),
    (line("1b4e9b0c-7a3f-4a5e.local"), "an mDNS name"),
    (line("turn.musterdorf.de", typ="relay"), "a host name"),
    (line("010.0.0.1"), "an IPv4 literal with a leading zero (octal to some parsers)"),
    (line("10.0.0.1", transport="sctp"), "a transport ICE does not use here"),
    (line("10.0.0.1", typ="magic"), "an unknown candidate type"),
    (line("10.0.0.1", tail=" raddr 10.0.0.2"), "raddr without rport"),
    (line("10.0.0.1", tail=" raddr <script> rport 1"), "a related address that is no address"),
    (line("10.0.0.1", tail=" generation"), "an extension without a value"),
    ("candidate:1 1 udp 1 10.0.0.1 54400 host", "typ missing"),
    ("candidate:1 1 udp 1 10.0.0.1  54400 typ host", "two spaces"),
    ("candidate:1 0 udp 1 10.0.0.1 54400 typ host", "component 0"),
    ("candidate:1 1 udp 0 10.0.0.1 54400 typ host", "priority 0"),
    ("candidate:1 1 udp 1 10.0.0.1 65536 typ host", "port out of range"),
    ("candidate:f\u00f6 1 udp 1 10.0.0.1 54400 typ host", "foundation outside ice-char"),
    ("candidate:1 1 udp 1 10.0.0.1 54400 typ host\r\na=candidate:1 1 udp 1 169.254.169.254 80 typ host",
     "a line break smuggling a second candidate"),
    ("1 1 udp 1 10.0.0.1 54400 typ host", "no candidate: prefix"),
    ("", "empty"),
])
def test_everything_else_is_dropped(candidate, why):
    assert not POLICY.allows(candidate), why


def test_link_local_and_metadata_stay_refused_even_if_every_network_is_allowed():
    assert EVERYWHERE.allows(line("8.8.8.8")) and EVERYWHERE.allows(line("2a00::1"))
    for address in ("169.254.169.254", "fe80::1", "224.0.0.1", "0.0.0.0", "fd00:ec2::254", "::ffff:169.254.1.1"):
        assert not EVERYWHERE.allows(line(address)), address


def test_parse_reads_the_rfc_8839_fields():
    c = parse("a=candidate:Fo+/1 2 TCP 1518280447 10.0.0.2 9 typ host raddr 10.0.0.3 rport 0 tcptype active "
              "generation 0")
    assert (c.foundation, c.component, c.transport, c.priority, c.address, c.port, c.type) == (
        "Fo+/1", 2, "tcp", 1518280447, "10.0.0.2", 9, "host")
    assert (c.related_address, c.related_port, c.tcp_type) == ("10.0.0.3", 0, "active")
    with pytest.raises(CandidateError):
        parse("candidate:1 1 udp 1 10.0.0.1 54400 typ host raddr 1.2.3.4 rport x")


# -- properties ------------------------------------------------------------------------------------------

def addresses_in(network: str):
    net = ipaddress.ip_network(network)
    return st.integers(int(net.network_address), int(net.broadcast_address)).map(
        lambda i: ipaddress.ip_address(i) if net.version == 4 else ipaddress.IPv6Address(i))


ALLOWED_ADDRESSES = st.one_of(*(addresses_in(n) for n in DEFAULT_NETWORKS)).filter(
    lambda a: not any(a in n for n in ALWAYS_REFUSED if n.version == a.version))
REFUSED_ADDRESSES = st.one_of(*(addresses_in(str(n)) for n in ALWAYS_REFUSED))
TOKENS = st.text("abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=12)
EXTENSIONS = st.lists(st.tuples(TOKENS.filter(lambda t: t not in ("raddr", "rport", "typ")), TOKENS),
                      max_size=4).map(lambda pairs: "".join(f" {k} {v}" for k, v in pairs))


@SETTINGS
@given(address=ALLOWED_ADDRESSES, port=st.integers(1024, 65535), typ=st.sampled_from(["host", "srflx", "prflx"]),
       transport=st.sampled_from(["udp", "UDP", "tcp"]), tail=EXTENSIONS)
def test_any_well_formed_candidate_in_a_configured_network_passes(address, port, typ, transport, tail):
    assert POLICY.allows(line(address, port, typ, transport, tail))


@SETTINGS
@given(address=REFUSED_ADDRESSES, port=st.integers(1, 65535), typ=st.sampled_from(["host", "srflx", "relay"]),
       tail=EXTENSIONS)
def test_no_candidate_naming_a_refused_address_passes_whatever_is_configured(address, port, typ, tail):
    for policy in (POLICY, EVERYWHERE, CandidatePolicy.from_config(["0.0.0.0/0"], relay_addresses=[str(address)])):
        assert not policy.allows(line(address, port, typ, tail=tail))
    if address.version == 4:
        assert not EVERYWHERE.allows(line(f"::ffff:{address}", port, typ))


@SETTINGS
@given(st.text(max_size=200))
@example("candidate:" + " ".join(["1"] * 8))
@example("candidate:1 1 udp 1 [::1] 1 typ host")
def test_arbitrary_text_is_never_an_exception_and_never_passes_unless_well_formed(text):
    try:
        parsed = parse(text)
    except CandidateError:
        assert not POLICY.allows(text) and not EVERYWHERE.allows(text)
    else:
        assert "\n" not in text and "\r" not in text and parsed.port >= 1


@SETTINGS
@given(allowed=st.lists(ALLOWED_ADDRESSES, max_size=4), refused=st.lists(REFUSED_ADDRESSES, min_size=1, max_size=4),
       newline=st.sampled_from(["\r\n", "\n"]), data=st.data())
def test_filtered_sdp_keeps_every_other_line_in_order_and_no_refused_candidate(allowed, refused, newline, data):
    candidates = [f"a={line(a)}" for a in allowed] + [f"a={line(a, 80)}" for a in refused]
    order = data.draw(st.permutations(candidates))
    head = ["v=0", "o=- 46117 2 IN IP4 127.0.0.1", "s=-", "t=0 0", "m=audio 9 UDP/TLS/RTP/SAVPF 111",
            "c=IN IP4 169.254.169.254", "a=mid:0"]
    sdp = newline.join(head + order + ["a=end-of-candidates", ""])
    out = POLICY.filter_sdp(sdp)
    lines = out.split(newline)
    assert [x for x in lines if x.startswith("a=candidate:")] == [c for c in order if POLICY.allows(c)]
    assert len([x for x in lines if x.startswith("a=candidate:")]) == len(allowed)
    assert [x for x in lines if not x.startswith(("a=candidate:", "c="))] == [
        x for x in head + ["a=end-of-candidates", ""] if not x.startswith("c=")]
    assert "c=IN IP4 0.0.0.0" in lines and "169.254" not in out
    assert POLICY.filter_sdp(out) == out


def test_a_connection_line_inside_the_networks_is_kept():
    sdp = "v=0\r\nc=IN IP4 192.168.1.5\r\nc=IN IP6 fe80::1\r\nc=IN IP4 0.0.0.0\r\n"
    assert POLICY.filter_sdp(sdp) == "v=0\r\nc=IN IP4 192.168.1.5\r\nc=IN IP6 ::\r\nc=IN IP4 0.0.0.0\r\n"


# -- settings --------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("networks", "message"), [
    (["10.0.0.1/8"], "did you mean 10.0.0.0/8"),
    (["169.254.0.0/16"], "never allowed"),
    (["fe80::/64"], "never allowed"),
    (["10.0.0.0/33"], "not a network"),
    (["rathaus"], "not a network"),
    ([10], "not a string"),
])
def test_wrong_networks_are_explained(networks, message):
    with pytest.raises(ValueError, match=message):
        parse_networks(networks)


def test_turn_hosts_are_read_from_the_urls():
    assert turn_hosts(["turn:turn.musterdorf.de:3478?transport=udp", "turns:TURN.musterdorf.de:5349",
                       "turns:[2a01:4f8::10]:5349", "turn:10.0.0.1", "stun:stun.musterdorf.de:3478",
                       "turn:[::1]"]) == ["turn.musterdorf.de", "2a01:4f8::10", "10.0.0.1", "::1"]
