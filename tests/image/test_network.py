"""The kiosk's .network file configures the unit's own Ethernet port and nothing else.

systemd-networkd has no offline way to ask which links a .network file would match, so
``match()`` applies its [Match] rules (whitespace-separated glob lists, "!" excluding,
every key must match) to links described the way udev and networkd see
them. A key this reader does not know fails the test rather than being ignored.
"""
from __future__ import annotations

import fnmatch
import re

import pytest

from tests.image.imageroot import REPO

NETWORK = REPO / "image/config/network/20-amtsklingel-wired.network"
INSTALL = REPO / "docs/install.md"

# What networkd compares: the kernel driver (ID_NET_DRIVER), the link type, the netdev kind
# (empty for hardware), udev's ID_PATH and the interface name.
LINK_KEYS = {"Driver": "driver", "Type": "type", "Kind": "kind", "Path": "path", "Name": "name"}

BUILT_IN = {
    "Pi 4 on-board (bcmgenet)": dict(driver="bcmgenet", type="ether", kind="", path="platform-fd580000.ethernet",
                                     name="end0"),
    "Pi 5 on-board (macb in RP1)": dict(driver="macb", type="ether", kind="", path="platform-1f00100000.ethernet",
                                        name="end0"),
    "QEMU virtio-net (boot test)": dict(driver="virtio_net", type="ether", kind="",
                                        path="platform-4010000000.pcie-pci-0000:00:01.0", name="enp0s1"),
}
USB_PATH = "platform-fd500000.pcie-pci-0000:01:00.0-usb-0:1.3:1.0"
NOT_OURS = {
    **{f"USB adapter ({driver})": dict(driver=driver, type="ether", kind="", path=USB_PATH, name="enx00e04c680001")
       for driver in ("r8152", "ax88179_178a", "asix", "cdc_ether", "cdc_ncm", "smsc95xx", "lan78xx")},
    "phone sharing its connection (rndis_host)": dict(driver="rndis_host", type="ether", kind="", path=USB_PATH,
                                                      name="usb0"),
    "iPhone (ipheth)": dict(driver="ipheth", type="ether", kind="", path=USB_PATH, name="eth1"),
    "Pi Wi-Fi (brcmfmac)": dict(driver="brcmfmac", type="wlan", kind="", path="platform-fe300000.mmcnr-mmc-0:0001:1",
                                name="wlan0"),
    "veth pair": dict(driver="veth", type="ether", kind="veth", path="", name="veth0"),
    "bridge": dict(driver="bridge", type="ether", kind="bridge", path="", name="br0"),
}


def match_section(text: str) -> dict[str, list[str]]:
    """[Match] of a .network file: key -> list of patterns (repeated keys append, empty resets)."""
    rules: dict[str, list[str]] = {}
    section = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        if section != "Match":
            continue
        key, _, value = (part.strip() for part in line.partition("="))
        if key not in LINK_KEYS:
            pytest.fail(f"[Match] {key}= is not understood by this test: teach match() what networkd does with it")
        rules[key] = rules.get(key, []) + value.split() if value else []
    return rules


def _one(patterns: list[str], value: str) -> bool:
    """networkd's net_condition_test_strv(): a "!pattern" that matches excludes the link; if
    there are plain patterns, one must match. An absent value (no kind) matches no pattern."""
    positive = False
    hit = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        positive |= not negated
        if value and fnmatch.fnmatchcase(value, pattern.lstrip("!")):
            if negated:
                return False
            hit = True
    return hit if positive else True


def match(rules: dict[str, list[str]], link: dict[str, str]) -> bool:
    return all(_one(patterns, link[LINK_KEYS[key]]) for key, patterns in rules.items())


def test_the_matcher_reads_systemd_lists():
    assert match({"Type": ["ether"], "Kind": ["!*"]}, NOT_OURS["USB adapter (r8152)"])  # the old rule took it
    assert not match({"Kind": ["!*"]}, NOT_OURS["veth pair"])
    assert match({"Kind": ["!*"]}, BUILT_IN["Pi 4 on-board (bcmgenet)"])
    assert not match({"Driver": ["!r8152", "bcm*"]}, NOT_OURS["USB adapter (r8152)"])


def test_the_file_names_a_driver_and_the_ethernet_type():
    rules = match_section(NETWORK.read_text())
    assert rules.get("Driver") and rules.get("Type") == ["ether"], rules


@pytest.mark.parametrize("link", BUILT_IN, ids=str)
def test_the_built_in_port_is_configured(link):
    assert match(match_section(NETWORK.read_text()), BUILT_IN[link])


@pytest.mark.parametrize("link", NOT_OURS, ids=str)
def test_a_usb_adapter_or_other_link_gets_no_route_dns_or_clock(link):
    assert not match(match_section(NETWORK.read_text()), NOT_OURS[link])


def test_the_fixed_address_example_matches_only_the_built_in_port():
    """docs/install.md's wired.network replaces the file above: it must match the same links."""
    example = re.search(r"```ini\n(.*?)```", INSTALL.read_text(), re.S).group(1)
    assert "Address=" in example
    rules = match_section(example)
    assert all(match(rules, BUILT_IN[name]) for name in BUILT_IN if "QEMU" not in name)
    assert not any(match(rules, link) for link in NOT_OURS.values())
