"""Redirect targets that come from the request: only ever a path on this site."""
from __future__ import annotations

import re
import urllib.parse

DEFAULT = "/console"

# Browsers drop tab, CR and LF anywhere in a URL and C0 controls and spaces at its
# ends, and read "\" as "/": "/\t/evil.example" and "/\\evil.example" both leave the site.
_DROPPED = re.compile(r"[\t\r\n]")
_ENDS = "".join(map(chr, range(0x21)))
# Characters a path and query may keep as they are; everything else is percent-encoded.
_SAFE = "/?&=%:@!$'()*+,;-._~"


def safe_next(target: str | None, default: str = DEFAULT) -> str:
    """``target`` if it is a path on this site (as a browser would read it), else ``default``."""
    if not target:
        return default
    cleaned = _DROPPED.sub("", target).strip(_ENDS).replace("\\", "/")
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in cleaned) or cleaned.startswith("//"):
        return default
    try:
        parts = urllib.parse.urlsplit(cleaned)
    except ValueError:
        return default
    if parts.scheme or parts.netloc or not parts.path.startswith("/") or parts.path.startswith("//"):
        return default
    path = urllib.parse.quote(parts.path, safe=_SAFE)
    return path + ("?" + urllib.parse.quote(parts.query, safe=_SAFE) if parts.query else "")


def login_url(path_qs: str) -> str:
    """The login page that sends the user back to ``path_qs`` afterwards."""
    return "/login?" + urllib.parse.urlencode({"next": safe_next(path_qs)}, safe="/")
