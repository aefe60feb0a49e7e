"""The console's scripts: every text they show is translated by central, and the page stays CSP-clean."""
from __future__ import annotations

import re
from pathlib import Path

from central.web.console import CONSOLE_STRINGS

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = sorted((ROOT / "central" / "static" / "console").glob("*.js"))
# t('...') calls and the English texts kept in lookup tables ({reason: 'Text.'}) that are passed to t() later.
CALL_RE = re.compile(r"""\bt\(\s*'((?:[^'\\]|\\.)+)'""")
TABLE_RE = re.compile(r"""^const [A-Z_]+ = \{(.*?)^\};""", re.S | re.M)
VALUE_RE = re.compile(r""":\s*'((?:[^'\\]|\\.)+)'""")


def shown_texts(source: str) -> set[str]:
    texts = set(CALL_RE.findall(source))
    for table in TABLE_RE.findall(source):
        texts |= set(VALUE_RE.findall(table))
    return {text.replace("\\'", "'") for text in texts}


def test_every_shown_text_is_in_the_catalogue():
    assert SCRIPTS, "no console scripts found"
    missing = {(path.name, text) for path in SCRIPTS for text in shown_texts(path.read_text())
               if text not in CONSOLE_STRINGS}
    assert not missing, f"add these to CONSOLE_STRINGS in central/web/console.py: {sorted(missing)}"


def test_scripts_are_small_modules_loaded_from_a_file():
    for path in SCRIPTS:
        assert len(path.read_text().splitlines()) <= 300, f"{path.name} has grown past 300 lines: split it by role"
    page = (ROOT / "central" / "templates" / "console.html").read_text()
    scripts = re.findall(r"<script\s+([^>]*)>", page)
    # The CSP (script-src 'self') allows no inline code: only JSON data and the module file.
    assert scripts == ['type="module" src="/static/console/main.js"', 'type="application/json" id="strings"']
