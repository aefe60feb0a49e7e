"""axe-core in the real browser: a page's WCAG 2.2 A/AA violations, as a test sees them.

    from tests.accessibility import assert_accessible
    await page.goto(url)
    await assert_accessible(page)            # fails the test, listing each violation and where it is

axe-core (npm, pinned in tests/axe/package-lock.json) is installed by ``./build.sh test``; it is only a
script, evaluated inside the page (so the page's Content-Security-Policy, which forbids inline scripts,
stays as it is). Contrast is judged on the page as rendered: set the viewport (phone portrait, laptop)
before calling.
"""
from __future__ import annotations

from functools import cache
from pathlib import Path

import pytest

AXE_JS = Path(__file__).parent / "axe" / "node_modules" / "axe-core" / "axe.min.js"
# WCAG 2.0, 2.1 and 2.2, levels A and AA: what the issue asks the citizen pages to meet.
WCAG_AA_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]
PHONE_PORTRAIT = {"width": 390, "height": 844}
LAPTOP = {"width": 1366, "height": 768}


@cache
def axe_source() -> str:
    if not AXE_JS.is_file():
        pytest.fail(f"{AXE_JS} is missing: ./build.sh test installs it (npm ci in tests/axe)")
    return AXE_JS.read_text(encoding="utf-8")


async def violations(page, tags: list[str] = WCAG_AA_TAGS) -> list[dict]:
    """axe-core's violations of ``tags`` on the page as it is now: [{id, impact, help, nodes: [target, …]}]."""
    if not await page.evaluate("() => typeof window.axe === 'object'"):
        await page.evaluate(axe_source())
    return await page.evaluate("""async (tags) => {
      const result = await axe.run(document, {runOnly: {type: 'tag', values: tags}, resultTypes: ['violations']});
      return result.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                                          nodes: v.nodes.map(n => n.target.join(' ') + ': ' + n.failureSummary)}));
    }""", tags)


async def assert_accessible(page, tags: list[str] = WCAG_AA_TAGS) -> None:
    """Fail with every violation and where it is; ``tags`` narrows or widens the rules (axe-core's tags)."""
    found = await violations(page, tags)
    assert not found, f"axe-core finds on {page.url}:\n" + "\n".join(
        f"- {v['id']} ({v['impact']}): {v['help']}\n    " + "\n    ".join(v["nodes"][:5]) for v in found)
