"""The QR code of a booking's link, as inline SVG: a kiosk reads it from the citizen's phone or a print-out."""
from __future__ import annotations

import html

import segno


def qr_svg(url: str, label: str) -> str:
    """Black on white with the quiet zone (scanners need both); ``label`` names it for screen readers."""
    code = segno.make(url, error="m", micro=False)
    svg = code.svg_inline(scale=5, dark="#000", light="#fff", border=4)
    return svg.replace("<svg ", f'<svg role="img" aria-label="{html.escape(label)}" ', 1)
