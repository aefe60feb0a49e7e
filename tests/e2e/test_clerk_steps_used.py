"""The end-to-end tests take a clerk on duty through tests/e2e/clerk_steps.py, so a change to the console's
login or its connection shows up in one place, and every test takes the same steps."""
from __future__ import annotations

import re
from pathlib import Path

HERE = Path(__file__).resolve().parent
# "log in" followed (maybe after a few lines that do not wait) by "wait until the console is connected"
BY_HAND = re.compile(r"await login\(.*\)\n(?:(?!.*data-state=connected).*\n){0,12}?.*data-state=connected", re.M)


def test_no_test_logs_a_clerk_in_and_waits_for_the_connection_by_hand():
    by_hand = [f"{path.name}:{source[:found.start()].count(chr(10)) + 1}"
               for path in sorted(HERE.glob("*.py")) if path.name != "clerk_steps.py"
               for source in [path.read_text()] for found in BY_HAND.finditer(source)]
    assert not by_hand, f"use on_duty(clerk, central) from tests/e2e/clerk_steps.py at: {by_hand}"
