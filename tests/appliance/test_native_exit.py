"""A process with livekit's native runtime in it ends with its own exit code and its logs written, and
never runs the interpreter's teardown, where livekit's threads can abort it (native_exit.py says why)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

SCRIPT = """
import atexit, logging, sys
logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(message)s")
if sys.argv[1] == "livekit":
    from appliance.hardware.echo import EchoCanceller
    EchoCanceller(delay_ms=120)  # starts livekit's runtime
atexit.register(lambda: print("teardown ran", file=sys.stderr, flush=True))
import threading, time
def last_work():
    time.sleep(0.3)
    print("a thread finished its work", file=sys.stderr, flush=True)
threading.Thread(target=last_work).start()  # not a daemon: the process waits for it, as without livekit
logging.getLogger("x").warning("the last word before the end")
from appliance.hardware.native_exit import end_process
end_process(3)
"""


def run(kind: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", SCRIPT, kind], capture_output=True, text=True, timeout=60,
                          cwd=REPO)


def test_with_the_runtime_loaded_the_process_skips_the_teardown_and_keeps_its_code_and_log():
    done = run("livekit")
    assert done.returncode == 3
    assert "the last word before the end" in done.stderr
    assert "a thread finished its work" in done.stderr
    assert "teardown ran" not in done.stderr


def test_without_the_runtime_the_process_ends_the_usual_way():
    done = run("plain")
    assert done.returncode == 3
    assert "the last word before the end" in done.stderr
    assert "teardown ran" in done.stderr

