"""image/config/nftables.conf, loaded into a throwaway "kiosk" network namespace and probed
over a veth cable from a second "town hall LAN" namespace."""
from __future__ import annotations

import json

import pytest

from tests.image import imageroot
from tests.image.imageroot import REPO
from tests.image.netns import Netns, cable

CONF = REPO / "image/config/nftables.conf"
SSH_OPEN = REPO / "image/config/ssh-open.nft"
SSH_CLOSE = REPO / "image/config/ssh-close.nft"
KIOSK_PAGE = 8000
SOME_SERVICE = 5000  # anything that might ever listen on a network address


@pytest.fixture
def net():
    imageroot.require_root()
    nft = imageroot.require("nft")
    kiosk, lan = Netns(), Netns()
    try:
        cable(kiosk, lan)
        kiosk.run(nft, "-f", str(CONF))
        yield kiosk, lan, nft
    finally:
        kiosk.close()
        lan.close()


def test_syntax():
    imageroot.require_root()
    result = imageroot.run(imageroot.require("nft"), "-c", "-f", str(CONF), check=False)
    assert result.returncode == 0, result.stderr


def _chains(ns: Netns, nft: str) -> dict[str, dict]:
    ruleset = json.loads(ns.run(nft, "-j", "list", "ruleset").stdout)["nftables"]
    return {item["chain"]["name"]: item["chain"] for item in ruleset if "chain" in item}


def _rules(ns: Netns, nft: str, chain: str) -> list[dict]:
    ruleset = json.loads(ns.run(nft, "-j", "list", "chain", "inet", "filter", chain).stdout)["nftables"]
    return [item["rule"] for item in ruleset if "rule" in item]


def test_policies_as_loaded(net):
    kiosk, _, nft = net
    chains = _chains(kiosk, nft)
    assert (chains["input"]["hook"], chains["input"]["policy"]) == ("input", "drop")
    assert (chains["forward"]["hook"], chains["forward"]["policy"]) == ("forward", "drop")
    assert (chains["output"]["hook"], chains["output"]["policy"]) == ("output", "accept")
    assert _rules(kiosk, nft, "ssh") == []


@pytest.mark.parametrize("address", ["192.0.2.1", "2001:db8::1"])
def test_nothing_answers_from_the_network(net, address):
    kiosk, lan, _ = net
    kiosk.listen(KIOSK_PAGE, SOME_SERVICE, 22)
    for port in (KIOSK_PAGE, SOME_SERVICE, 22):
        # Dropped, not refused: a scanner learns nothing.
        assert lan.connect(address, port) == "timeout", port


def test_loopback_is_open(net):
    kiosk, _, _ = net
    kiosk.listen(KIOSK_PAGE)
    assert kiosk.connect("127.0.0.1", KIOSK_PAGE) == "connected"
    assert kiosk.connect("::1", KIOSK_PAGE) == "connected"


@pytest.mark.parametrize("address", ["192.0.2.2", "2001:db8::2"])
def test_outbound_connections_and_their_replies_pass(net, address):
    """The appliance reaches central and TURN; over IPv6 this also needs neighbour discovery."""
    kiosk, lan, _ = net
    lan.listen(443)
    assert kiosk.connect(address, 443, timeout=3) == "connected"


def test_ssh_only_while_sshd_runs(net):
    kiosk, lan, nft = net
    kiosk.listen(22)
    kiosk.run(nft, "-f", str(SSH_OPEN))
    kiosk.run(nft, "-f", str(SSH_OPEN))  # sshd restarted: still one rule
    assert len(_rules(kiosk, nft, "ssh")) == 1
    assert lan.connect("192.0.2.1", 22) == "connected"
    assert lan.connect("192.0.2.1", KIOSK_PAGE) == "timeout"  # only SSH opened
    kiosk.run(nft, "-f", str(SSH_CLOSE))
    assert _rules(kiosk, nft, "ssh") == []
    assert lan.connect("192.0.2.1", 22) == "timeout"
