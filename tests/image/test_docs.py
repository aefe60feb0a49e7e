"""docs/security.md and docs/install.md say what the files and tests really do."""
from __future__ import annotations

import ast
import re
import subprocess
import tomllib

from appliance.config import ApplianceConfig
from protocol.fleet import SELFTEST_ITEMS
from tests.image.imageroot import REPO

SECURITY = REPO / "docs/security.md"
INSTALL = REPO / "docs/install.md"


def _test_names(path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {node.name for node in tree.body if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and node.name.startswith("test_")}


def test_every_test_named_in_security_md_exists():
    named, current = [], None
    # `test_x.py`, `dir/test_x.py` (under tests/; a bare name is one of the image's), `::test_y` after either
    for file, test in re.findall(r"`((?:\w+/)*test_\w+\.py)?(?:::(test_\w+))?", SECURITY.read_text()):
        current = file or current
        if test:
            named.append((current, test))
    assert len(named) > 30
    def names(file: str) -> set[str]:
        found = [REPO / "tests" / d / file for d in ("image", "imagebuild", "") if (REPO / "tests" / d / file).exists()]
        return _test_names(found[0]) if found else set()
    missing = [f"{file}::{test}" for file, test in named if test not in names(file)]
    assert not missing, f"docs/security.md names tests that do not exist: {missing}"


def _toml_example() -> str:
    return re.search(r"```toml\n(.*?)```", INSTALL.read_text(), re.S).group(1)


def test_the_settings_example_is_accepted_by_the_appliance(tmp_path):
    """The example on the boot drive, over the image's built-in settings (built with --central):
    the appliance takes central from the image and the sound devices and pins from the example."""
    done = subprocess.run(["/usr/bin/python3", str(REPO / "image/build/builtin-settings.py"), "write", "--central",
                           "https://buergerbuero.musterdorf.de", "--defaults", str(REPO / "image/config/appliance.toml"),
                           "--root", str(tmp_path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    example = tmp_path / "appliance.toml"
    example.write_text(_toml_example())
    raw = tomllib.loads(_toml_example())
    assert "central_url" not in raw and "token_file" not in raw, "both come from the image and the enrolment"
    config = ApplianceConfig.load(tmp_path / "usr/share/amtsklingel/appliance.toml", example)
    assert config.central_url == "https://buergerbuero.musterdorf.de"
    assert config.hardware["backend"] == "pi" and config.hardware["button"] == {"pin": 17, "led_pin": 18}
    assert config.hardware["microphone"] == {"device": "plughw:CARD=kioskaudio"}
    assert config.kiosk_port == 8000


IMAGES = REPO / "docs/images"


def test_the_install_guide_shows_screenshots_that_exist_and_are_small():
    """Screenshots taken by tests/docs/test_install_guide_screens.py (tools/install-screenshots)."""
    shown = re.findall(r"!\[[^\]]+\]\((images/[^)]+\.png)\)", INSTALL.read_text())
    assert {"images/kiosk-enrol-code.png", "images/admin-enrol.png", "images/kiosk-idle.png",
            "images/kiosk-selftest.png"} <= set(shown)
    for name in shown:
        path = REPO / "docs" / name
        assert path.is_file(), f"docs/install.md shows {name}, which does not exist"
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size < 120_000, name
    assert {p.name for p in IMAGES.glob("*.png")} == {n.removeprefix("images/") for n in shown}, "unused images"


def test_the_self_test_table_names_every_item():
    """One row per self-test item of protocol/fleet.py, with the kiosk's German words for it."""
    table = INSTALL.read_text().split("## 7. The self-test", 1)[1].split("## 8.", 1)[0]
    rows = [line for line in table.splitlines() if line.startswith("| **")]
    assert len(rows) == len(SELFTEST_ITEMS), rows


def test_wiring_and_sound_names_match_the_files():
    text = INSTALL.read_text()
    assert "GPIO17 (pin 11)" in text and "GPIO18 (pin 12)" in text
    rules = (REPO / "udev/79-amtsklingel-audio.rules").read_text()
    for name in ("kioskaudio", "kioskmic", "kioskspeaker"):
        assert f"CARD={name}" in text and f'"{name}"' in rules
    assert "330 Ω" in text and "3.9 mA" in text  # (3.3 V - 2.0 V) / 330 Ω
