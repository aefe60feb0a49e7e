"""Which sound card an ALSA device name points at, whether it is plugged in, and what to call it.

Read from ``/proc/asound`` (plain files, no ALSA library): the kiosk polls it every few seconds
while a USB microphone or speakerphone is unplugged (appliance/fleet/watch.py), and IT reads the
card's own name on the fleet page, e.g. "USB speakerphone Jabra SPEAK 410 USB (plughw:CARD=kioskaudio)".

A device that names no card (``default``, ``null``, a ``file`` plugin) counts as present: there is
nothing to unplug, and an error when it is used still reaches the fault path.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

PROC_ASOUND = Path("/proc/asound")

# The names udev/79-amtsklingel-audio.rules gives USB sound cards, by what they can do.
KIND_OF_ID = {"kioskaudio": "USB speakerphone", "kioskmic": "USB microphone", "kioskspeaker": "USB speaker"}

# hw:1, plughw:CARD=kioskaudio,DEV=0, sysdefault:kioskmic, default:CARD=vc4hdmi0 ... (the plugins whose
# first argument is a card; "plug:dmix" names a plugin, not a card)
_CARD_ARG = re.compile(r"^(?:hw|plughw|default|sysdefault|front|hdmi|iec958|dmix|dsnoop):(?:CARD=)?([^,\s]+)")
# ... and a card named anywhere, also inside another plugin: plug:'dsnoop:CARD=Loopback,DEV=1'
_CARD_KEY = re.compile(r"\bCARD=([^,'\"\s]+)")
# " 1 [kioskaudio     ]: USB-Audio - Jabra SPEAK 410 USB" then the long name on the next line
_CARD_LINE = re.compile(r"^\s*(\d+)\s+\[([^\]]+?)\s*\]:\s*(\S+)\s+-\s+(.*)$")


@dataclass(frozen=True)
class Card:
    number: int
    id: str
    driver: str
    short_name: str


def card_of(device: str) -> str | None:
    """The card an ALSA device name points at (an id such as ``kioskaudio`` or a number), or None."""
    found = _CARD_KEY.search(device) or _CARD_ARG.match(device.strip())
    return found.group(1).strip("\"'") if found else None


def cards(proc: Path = PROC_ASOUND) -> list[Card]:
    """The sound cards the kernel has now, from ``/proc/asound/cards``; none if it cannot be read."""
    try:
        text = (proc / "cards").read_text()
    except OSError:
        return []
    return [Card(int(m.group(1)), m.group(2), m.group(3), m.group(4).strip())
            for m in map(_CARD_LINE.match, text.splitlines()) if m]


def find_card(device: str, proc: Path = PROC_ASOUND) -> Card | None:
    card = card_of(device)
    if card is None:
        return None
    return next((c for c in cards(proc) if c.id == card or str(c.number) == card), None)


def present(device: str, proc: Path = PROC_ASOUND) -> bool:
    """False only when ``device`` names a card that the kernel does not have (it was unplugged)."""
    return card_of(device) is None or find_card(device, proc) is not None


def describe(device: str, proc: Path = PROC_ASOUND) -> str | None:
    """What IT reads for ``device``: the card's kind and name, and the ALSA device string; None while
    the card it names is not there."""
    if card_of(device) is None:
        return f"ALSA {device}"
    card = find_card(device, proc)
    if card is None:
        return None
    kind = KIND_OF_ID.get(card.id) or ("USB audio" if card.driver == "USB-Audio" else "sound card")
    return f"{kind} {card.short_name} ({device})"
