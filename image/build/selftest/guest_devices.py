"""The guest's stand-in devices for the real backends: vivid (a V4L2 camera) and snd-aloop (an ALSA
loopback card), loaded by the boot test through the kernel command line (``modules-load=``), and
what the appliance does with them: which device nodes it holds, its CPU time, its watchdog pings,
its echo reports. Used by call_checks.py. Standard library only.
"""
from __future__ import annotations

import json
import math
import os
import re
import threading
import time
from pathlib import Path

from checklog import run

MODULES = ("vivid", "snd_aloop")
VIVID_DRIVER = Path("/sys/bus/platform/drivers/vivid")
VENV_PYTHON = "/usr/lib/amtsklingel/venv/bin/python"
LOOPBACK_AUDIO = Path(__file__).with_name("loopback_audio.py")
# The appliance's line (appliance/hardware/echo_report.py; tests/imagebuild/test_guest_call.py checks
# that both agree).
ECHO_REPORT = re.compile(
    r"echo report: (?P<window>[\d.]+) s, far end (?P<far>[\d.]+) s, microphone (?P<mic>-?[\d.]+|-inf) dBFS, "
    r"sent (?P<sent>-?[\d.]+|-inf) dBFS, reduced (?P<reduced>-?[\d.]+|inf|n/a) dB")


# What the microphone's process adds to each report (appliance/hardware/pi/capture_process.py, window_note)
# and the sound the canceller took (appliance/hardware/echo_streams.py); tests/imagebuild/test_guest_call.py
# checks that they agree.
CANCELLER_CPU = re.compile(r"cancelling thread (?P<cpu>[\d.]+) s\), frames skipped behind (?P<skipped>\d+)")
MICROPHONE_MS = re.compile(r", microphone (?P<ms>\d+) ms, ")


def canceller_load(reports: list[dict]) -> dict | None:
    """Over the reports' windows: the cancelling thread's CPU seconds, the seconds of sound it handled and the
    20 ms frames it skipped because it fell behind (None if the reports do not say)."""
    cpu = sound = skipped = 0.0
    for r in reports:
        load, mic = CANCELLER_CPU.search(r.get("streams", "")), MICROPHONE_MS.search(r.get("streams", ""))
        if load is None or mic is None:
            return None
        cpu, sound, skipped = cpu + float(load["cpu"]), sound + int(mic["ms"]) / 1000, skipped + int(load["skipped"])
    return {"cpu_s": cpu, "sound_s": sound, "skipped": int(skipped)} if reports else None


def requested(cmdline: str | None = None) -> bool:
    """The boot test asked for the real backends: its command line loads both modules."""
    words = (cmdline if cmdline is not None else Path("/proc/cmdline").read_text()).split()
    loaded = {name.replace("-", "_") for word in words if word.startswith("modules-load=")
              for name in word.split("=", 1)[1].split(",")}
    return all(module in loaded for module in MODULES)


def video_nodes() -> dict[str, str]:
    """/dev/videoN -> the driver's name for it (vivid's: ``vivid-000-vid-cap``)."""
    nodes = {}
    for entry in sorted(Path("/sys/class/video4linux").glob("video*")):
        try:
            nodes[f"/dev/{entry.name}"] = (entry / "name").read_text().strip()
        except OSError:
            continue
    return nodes


def loopback_card() -> str | None:
    for card in Path("/proc/asound").glob("card[0-9]*"):
        try:
            if (card / "id").read_text().strip() == "Loopback":
                return f"{card.name}: {(card / 'id').read_text().strip()}"
        except OSError:
            continue
    return None


def main_pid(unit: str) -> int:
    value = run("systemctl", "show", unit, "-p", "MainPID", "--value")
    return int(value) if value.isdigit() else 0


def child_threads(pid: int) -> dict[str, tuple[int, float]]:
    """The threads of ``pid``'s child processes (the microphone's process): ``"pid/tid name"`` -> (nice, CPU s)."""
    tick = os.sysconf("SC_CLK_TCK")
    found = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) != pid:  # fields after the name: state, ppid, ...
            continue
        child = stat.parent.name
        for task in Path(f"/proc/{child}/task").glob("*"):
            try:
                text = (task / "stat").read_text()
            except OSError:
                continue
            name = text[text.index("(") + 1:text.rindex(")")]
            rest = text.rsplit(")", 1)[1].split()
            # utime, stime are fields 14 and 15 of stat, nice 19: 12, 13 and 17 after the name.
            found[f"{child}/{task.name} {name}"] = (int(rest[16]), (int(rest[11]) + int(rest[12])) / tick)
    return found


def held_devices(pid: int) -> list[str]:
    """The camera and sound device nodes the process has open."""
    held = set()
    try:
        fds = list(Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return []
    for fd in fds:
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith(("/dev/video", "/dev/snd/pcm", "/dev/media")):
            held.add(target)
    return sorted(held)


def unplug_camera() -> str:
    """Takes vivid's device away under the appliance, as pulling a USB camera does: the driver lets
    go of it (unbind), so the video node disappears while the appliance still holds it open."""
    bound = [entry.name for entry in VIVID_DRIVER.glob("vivid.*")] if VIVID_DRIVER.exists() else []
    for name in bound:
        (VIVID_DRIVER / "unbind").write_text(name)
    return ", ".join(bound) or "no vivid device bound"


def loopback_audio(pid: int, speaker: str, microphone: str, seconds: float, citizen: bool = False) -> dict:
    """Run loopback_audio.py in the appliance's IPC namespace (dmix and dsnoop share memory there)."""
    cmd = ["nsenter", f"--ipc=/proc/{pid}/ns/ipc", VENV_PYTHON, str(LOOPBACK_AUDIO), "--speaker", speaker,
           "--microphone", microphone, "--seconds", str(seconds)] + (["--citizen"] if citizen else [])
    out = run(*cmd, timeout=seconds * 4 + 120)
    for line in reversed(out.splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    return {"error": out[-300:] or "no output"}


def echo_reports(unit: str, since_us: int, until_us: int) -> list[dict]:
    """The appliance's echo report lines logged between two CLOCK_MONOTONIC times (µs)."""
    out = run("journalctl", "-u", unit, "-b", "-o", "json", "--no-pager", "--output-fields=MESSAGE", timeout=120)
    found = []
    for line in out.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        at = int(entry.get("__MONOTONIC_TIMESTAMP", 0))
        match = ECHO_REPORT.search(str(entry.get("MESSAGE", "")))
        if match and since_us <= at <= until_us:
            # After the figures, what the canceller was fed in that window (appliance/hardware/echo_streams.py).
            streams = str(entry.get("MESSAGE", ""))[match.end():].lstrip("; ")
            found.append({k: float(v) if v not in ("n/a",) else None for k, v in match.groupdict().items()}
                         | {"at_us": at, "streams": streams})
    return found


def journal_count(unit: str, text: str) -> int:
    """How many of the unit's messages in this boot contain ``text`` (no -g: PCRE2 may be absent)."""
    out = run("journalctl", "-u", unit, "-b", "-o", "cat", "--no-pager", timeout=120)
    return sum(text in line for line in out.splitlines())


def journal_lines(unit: str, words: tuple[str, ...], last: int = 12) -> list[str]:
    """The unit's last messages of this boot that contain one of ``words``, with their time since boot."""
    out = run("journalctl", "-u", unit, "-b", "-o", "short-monotonic", "--no-pager", timeout=120)
    return pick_lines(out, words, last)


def pick_lines(journal: str, words: tuple[str, ...], last: int = 12) -> list[str]:
    """Of ``journalctl -o short-monotonic`` output, the last lines with one of ``words``: "123.4 s: message"."""
    found = [line.split("]", 1)[0].strip("[ ") + " s: " + line.split(": ", 1)[-1]
             for line in journal.splitlines() if any(word in line for word in words) and "echo report" not in line]
    return found[-last:]


# The line the appliance logs when an ALSA device is opened (appliance/hardware/pi/alsa_pcm.py):
# "ALSA playback '<device>': period 1024 frames (21.3 ms), buffer ...". Its underrun lines also begin
# with "ALSA playback", so the sizes are found by what only they say.
ALSA_SIZES = (": period ",)
# The controller's line when a call's media connected (appliance/controller/media.py): "call 1: connected",
# in the journal with the level and logger in front ("INFO:appliance.controller.media:call 1: connected").
CALL_CONNECTED = re.compile(r"(?:^|:)call \d+: connected$")


def calls_connected(journal: str) -> int:
    """How many calls connected, of ``journalctl -o cat`` output."""
    return sum(bool(CALL_CONNECTED.search(line.strip())) for line in journal.splitlines())


def erle_db(reports: list[dict]) -> tuple[float | None, float]:
    """Echo reduction over the windows with far-end sound, weighted by how long the far end played
    in each; and those seconds."""
    far = sum(r["far"] for r in reports if r["far"])
    mic = sum(r["far"] * 10 ** (r["mic"] / 10) for r in reports if r["far"] and math.isfinite(r["mic"]))
    sent = sum(r["far"] * 10 ** (r["sent"] / 10) for r in reports if r["far"] and math.isfinite(r["sent"]))
    if not far or not mic:
        return None, far
    return (math.inf if not sent else 10 * math.log10(mic / sent)), far


class UnitSampler:
    """Samples the appliance unit every second on a thread: CPU time, watchdog pings, restarts."""

    PROPS = "CPUUsageNSec,WatchdogTimestampMonotonic,NRestarts,WatchdogUSec"

    def __init__(self, unit: str, every_s: float = 1.0) -> None:
        self.unit, self.every_s = unit, every_s
        self.samples: list[dict] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> UnitSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def sample(self) -> dict:
        out = run("systemctl", "show", self.unit, "-p", self.PROPS, timeout=30)
        props = dict(line.partition("=")[::2] for line in out.splitlines())
        manager = run("systemctl", "show", "-p", "WatchdogLastPingTimestampMonotonic", timeout=30)
        props |= dict(line.partition("=")[::2] for line in manager.splitlines())
        ticks = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        return ({"t": time.monotonic(), "busy_ticks": sum(ticks) - ticks[3] - ticks[4], "all_ticks": sum(ticks)}
                | {k: int(v) if v.isdigit() else v for k, v in props.items()})

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append(self.sample())
            self._stop.wait(self.every_s)


def cpu_s_per_min(samples: list[dict]) -> float | None:
    usable = [s for s in samples if isinstance(s.get("CPUUsageNSec"), int)]
    if len(usable) < 2 or usable[-1]["t"] <= usable[0]["t"]:
        return None
    cpu_s = (usable[-1]["CPUUsageNSec"] - usable[0]["CPUUsageNSec"]) / 1e9
    return cpu_s / (usable[-1]["t"] - usable[0]["t"]) * 60


def busy_fraction(samples: list[dict]) -> float | None:
    """How busy the guest's CPUs were (all of them, /proc/stat) between the first and last sample."""
    if len(samples) < 2 or samples[-1]["all_ticks"] <= samples[0]["all_ticks"]:
        return None
    return (samples[-1]["busy_ticks"] - samples[0]["busy_ticks"]) / (samples[-1]["all_ticks"] - samples[0]["all_ticks"])


def ping_gaps_s(samples: list[dict], key: str) -> list[float]:
    """Seconds between successive watchdog pings seen in the samples (each ping's own time)."""
    pings = sorted({s[key] for s in samples if isinstance(s.get(key), int) and s[key]})
    return [(b - a) / 1e6 for a, b in zip(pings, pings[1:])]
