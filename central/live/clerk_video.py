"""Read from a clerk's answer what their browser does with the kiosk's video (for city IT).

The kiosk offers H.264 (passed through from a Pi 4's camera) and VP8; the clerk's browser answers
with the codecs it can decode. A browser without H.264 (Firefox ESR whose OpenH264 plugin is absent
or blocked) makes a Pi 4 kiosk encode VP8 in software; one that refuses the video (``m=video 0``)
gets a call with audio only. Only the codec names are read; nothing else of the answer is kept.
"""
from __future__ import annotations

import re

from central.storage.staff_browsers import ClerkVideo

# Most specific first: Edge's and Chrome's strings also name Safari, Chrome's names no Firefox.
_BROWSERS = (("Edge", r"Edg/(\d+)"), ("Firefox", r"Firefox/(\d+)"), ("Chrome", r"(?:Headless)?Chrome/(\d+)"),
             ("Chromium", r"Chromium/(\d+)"), ("Safari", r"Version/(\d+)[.\d]* .*Safari/"))
_RTPMAP = re.compile(r"^a=rtpmap:(\d+) ([\w.-]+)/", re.MULTILINE)
_IGNORED = {"rtx", "red", "ulpfec", "flexfec-03"}  # repair formats, not what the picture is in


def browser_name(user_agent: str | None) -> str:
    """"Firefox 128" from a User-Agent header; IT needs the browser and its major version, not more."""
    for name, pattern in _BROWSERS:
        if user_agent and (found := re.search(pattern, user_agent)):
            return f"{name} {found.group(1)}"
    return "unknown browser"


def answered_video(answer: str, user_agent: str | None) -> ClerkVideo | None:
    """What the answer says of the clerk's video; None if it has no video section at all."""
    section = re.search(r"^m=video (\d+) [^\r\n]*\r?\n((?:(?!m=)[^\r\n]*\r?\n?)*)", answer, re.MULTILINE)
    if section is None:
        return None
    codecs = {pt: name.lower() for pt, name in _RTPMAP.findall(section.group(2))}
    order = [codecs.get(pt) for pt in section.group(0).split("\n", 1)[0].split()[3:]]
    names = [name for name in order if name and name not in _IGNORED]
    if section.group(1) == "0":  # refused: Firefox still lists a dummy codec there
        return ClerkVideo(browser_name(user_agent), h264=False, video="none")
    return ClerkVideo(browser_name(user_agent), h264="h264" in names, video=names[0] if names else "none")
