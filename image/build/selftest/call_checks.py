"""A whole visit on the real backends: the appliance's V4L2 camera on vivid, its ALSA microphone and
speaker on the snd-aloop loopback card (an echo path: the speaker's dmix on hw:Loopback,0, the
microphone's dsnoop on hw:Loopback,1), its echo canceller on that card's timing, and a clerk in
Chromium on the host side of the town hall's network (image/build/clerk-call.py) who picks up.

Only when the boot test's command line loads vivid and snd-aloop (guest_devices.requested). The
host follows the phases on the console (``INFO call-phase: NAME``) and judges what the clerk gets:
moving video and the citizen's voice. Here, in the guest:
  alsa-clerk-to-kiosk    the clerk's voice came out of the speaker's ALSA device into the loopback
  echo-removed-in-guest  the appliance's echo reports (hardware.echo.report_s): ERLE >= 30 dB
  camera-unplug-fault    vivid taken away mid-call: the kiosk page says so, the call goes on
                         audio-only (or ends) with that reason
and, reported: the appliance's CPU per minute of call and what its watchdog saw meanwhile.
"""
from __future__ import annotations

import math
import statistics
import time

import guest_devices as g
from checklog import check, report, run
from enrolment_checks import settings
from kiosk_checks import PAGE_PORT, _action, _wait_view, kiosk_view

ERLE_MIN_DB = 30.0
PICKUP_TIMEOUT_S = 420     # the host's Chromium logs in and picks up; TCG is slow
CONNECT_TIMEOUT_S = 200    # central and the kiosk give the call 180 s to connect under emulation (README)
CLERK_TALKS_S = 40         # the clerk speaks, the citizen is silent: the echo is measured
CONVERGE_S = 15            # the canceller's first seconds are not judged
CITIZEN_TALKS_S = 25       # the citizen speaks: the clerk must hear it
IDLE_SAMPLE_S = 20
FAULT_TIMEOUT_S = 120
HEARD_MIN_DBFS = -50.0     # the clerk's voice at the loopback's capture side (speech is ~ -30)
# What the appliance logs of a call's course (appliance/controller/, appliance/service/main.py).
# "... answered none of the ICE consent checks ...": the clerk's side went silent (appliance/call/consent.py);
# "... ICE consent checks were answered late": the kiosk fell behind, and the call went on.
CALL_WORDS = ("call ", "the call", "call:", "clerk's voice", "speaker", "microphone", "track", "connection",
              "underrun")
CALL_END_WORDS = ("ICE consent checks were answered late", "received media", "received voice")


def phase(name: str, detail: str = "") -> None:
    report("INFO", "call-phase", f"{name}{': ' + detail if detail else ''}")


def _devices(hardware: dict) -> tuple[str, str]:
    return (str(hardware.get("speaker", {}).get("device", "")), str(hardware.get("microphone", {}).get("device", "")))


def guest_devices() -> bool:
    nodes, card = g.video_nodes(), g.loopback_card()
    vivid = {node: name for node, name in nodes.items() if name.startswith("vivid")}
    modules = {m: (g.Path("/sys/module") / m).exists() for m in g.MODULES}
    ok = all(modules.values()) and bool(vivid) and card is not None
    loaded = ", ".join(f"{m} {'loaded' if v else 'MISSING'}" for m, v in modules.items())
    check("guest-devices", ok, f"modules {loaded}; "
          f"video {', '.join(f'{n} ({v})' for n, v in nodes.items()) or 'none'}; sound {card or 'no Loopback card'}")
    return ok


def clerk_call(unit: str) -> None:
    if not g.requested():
        report("INFO", "real-devices", "not asked for (no modules-load=vivid,snd_aloop): fake hardware")
        return
    if not guest_devices():
        return
    hardware = settings().get("hardware", {})
    speaker, microphone = _devices(hardware)
    camera = hardware.get("camera", {})
    pid = g.main_pid(unit)
    report("INFO", "real-devices", f"appliance pid {pid}; camera {camera}; speaker {speaker!r}; microphone {microphone!r}; "
           f"echo {hardware.get('echo', {})}; holds {', '.join(g.held_devices(pid)) or 'nothing'}")
    # The path itself, before any call: a voice into the speaker's dmix comes out at the microphone.
    path = g.loopback_audio(pid, speaker, microphone, 4, citizen=True)
    report("INFO", "loopback-path", _audio_text(path))
    with g.UnitSampler(unit, every_s=3) as idle:
        time.sleep(IDLE_SAMPLE_S)
    idle_cpu = g.cpu_s_per_min(idle.samples)

    view = _wait_view(PAGE_PORT, lambda v: v.get("online") and v.get("screen") == "idle", 120)
    department = next((d["slug"] for d in view.get("departments", []) if d.get("open")), None)
    if department is None:
        check("clerk-call", False, f"no open department to call (screen {view.get('screen')})")
        return
    connected_before = g.calls_connected(_journal(unit))
    _action(PAGE_PORT, "choose", department)
    _wait_view(PAGE_PORT, lambda v: v.get("screen") == "consent", 60)
    _action(PAGE_PORT, "confirm")
    waiting = _wait_view(PAGE_PORT, lambda v: v.get("screen") == "waiting" and v.get("position"), 120)
    report("INFO", "call-waiting", f"{department}: screen {waiting.get('screen')}, position {waiting.get('position')}")
    called = _wait_view(PAGE_PORT, lambda v: v.get("screen") == "in_call", PICKUP_TIMEOUT_S)
    if called.get("screen") == "in_call":  # the camera's first picture may take a while under emulation
        called = _wait_view(PAGE_PORT, lambda v: v.get("camera_on") or v.get("notice") or v.get("screen") != "in_call", 60)
    connected_after_s = _wait_connected(unit, connected_before) if called.get("screen") == "in_call" else None
    check("clerk-call", called.get("screen") == "in_call" and connected_after_s is not None,
          f"screen {called.get('screen')}, camera {'on' if called.get('camera_on') else 'off'}, microphone "
          f"{'on' if called.get('microphone_on') else 'off'}, notice {called.get('notice')}; media "
          + (f"connected {connected_after_s:.0f} s after the call screen" if connected_after_s is not None else
             f"not connected within {CONNECT_TIMEOUT_S} s: "
             + " | ".join(g.journal_lines(unit, CALL_WORDS, last=6))[:600]))
    if called.get("screen") != "in_call" or connected_after_s is None:
        return
    # Every phase runs from the moment the media connected, not from the call screen (which comes at the
    # pick-up): how long an emulated guest takes to connect must not eat into what is measured. And the
    # device checks follow each other at once, the camera pulled right after the voices, the journal's
    # reports only after that: what they judge is the device path, and an emulated call that runs longer
    # only adds chances for the emulator's slowness (not the devices) to end it first.
    time.sleep(5)  # the capture threads are up
    nodes = g.video_nodes()
    held = [f"{node} ({nodes[node]})" if node in nodes else node for node in g.held_devices(pid)]
    report("INFO", "call-devices", f"the appliance holds {', '.join(held) or 'no device node'}")

    with g.UnitSampler(unit, every_s=3) as in_call:
        phase("clerk-talks", f"{CLERK_TALKS_S} s, the citizen silent")
        started_us = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        threads = g.child_threads(pid)
        heard = g.loopback_audio(pid, speaker, microphone, CLERK_TALKS_S)
        ended_us = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        _threads(threads, g.child_threads(pid), (ended_us - started_us) / 1e6)
        phase("citizen-talks", f"{CITIZEN_TALKS_S} s")
        citizen = g.loopback_audio(pid, speaker, microphone, CITIZEN_TALKS_S, citizen=True)
    _clerk_to_kiosk(heard, citizen)
    _echo(unit, started_us + CONVERGE_S * 1_000_000, ended_us)  # one journalctl: seconds, not a minute
    phase("camera-unplug")
    _camera_unplug()
    _load(unit, camera, idle_cpu, in_call.samples)
    # The ALSA period and buffer the appliance's devices got (appliance/hardware/pi/alsa_pcm.py).
    report("INFO", "alsa-sizes", " | ".join(g.journal_lines(unit, g.ALSA_SIZES, last=2)) or "not logged")
    report("INFO", "call-course", (" | ".join(g.journal_lines(unit, CALL_WORDS)) or "nothing logged")[:1500])
    # What the appliance said about its devices and the call meanwhile (warnings and errors).
    said = [line for line in run("journalctl", "-u", unit, "-b", "-p", "warning", "-o", "cat", "--no-pager",
                                 timeout=120).splitlines() if "echo report" not in line]
    shown = said if len(said) <= 6 else [*said[:3], "...", *said[-3:]]
    report("INFO", "appliance-warnings", f"{len(said)}: {' | '.join(shown)}"[:1500])
    phase("hangup")
    _action(PAGE_PORT, "hangup")
    after = _wait_view(PAGE_PORT, lambda v: v.get("screen") in ("idle", "ended"), 120)
    report("INFO", "call-ended", f"screen {after.get('screen')}, reason {after.get('ended_reason')}")
    # What the appliance logs as the call closes: consent checks answered late, received media that waited
    # in the socket or was dropped as stale (appliance/call/peer.py, consent.py, catch_up.py).
    time.sleep(5)  # the call closes on the event loop after the page's hang-up
    report("INFO", "call-end-figures", " | ".join(g.journal_lines(unit, CALL_END_WORDS, last=5))
           or "nothing logged: no consent check answered late, no received media waited 0.2 s")


def _journal(unit: str) -> str:
    return run("journalctl", "-u", unit, "-b", "-o", "cat", "--no-pager", timeout=120)


def _wait_connected(unit: str, before: int) -> float | None:
    """Seconds until the appliance logged that this call's media connected; None if it did not in time
    or the call screen went away (the call failed)."""
    start = time.monotonic()
    while time.monotonic() - start < CONNECT_TIMEOUT_S:
        if g.calls_connected(_journal(unit)) > before:
            return time.monotonic() - start
        try:
            if kiosk_view(PAGE_PORT, timeout=10).get("screen") != "in_call":
                return None
        except OSError:
            pass  # the page is slow to answer under emulation: ask again
        time.sleep(3)  # journalctl costs the emulated CPU a second or more: not too often
    return None


def _audio_text(result: dict) -> str:
    if "error" in result:
        return f"error: {result['error']}"
    levels = [x for x in result.get("heard_dbfs", []) if math.isfinite(x)]
    text = (f"{result.get('seconds')} s recorded in {result.get('wall_s')} s, heard median "
            f"{statistics.median(levels) if levels else -math.inf:.1f} dBFS (max {max(levels, default=-math.inf):.1f})")
    if "played_dbfs" in result:
        text += f", played {result['played_dbfs']} dBFS, speaker-to-microphone delay {result.get('delay_ms')} ms"
    return text


def _clerk_to_kiosk(heard: dict, citizen: dict) -> None:
    """The clerk's voice, played by the kiosk's speaker into dmix, heard at the loopback's capture side."""
    levels = [x for x in heard.get("heard_dbfs", []) if math.isfinite(x)]
    median = statistics.median(levels) if levels else -math.inf
    check("alsa-clerk-to-kiosk", "error" not in heard and median > HEARD_MIN_DBFS,
          f"the clerk's voice through the speaker's ALSA device at the microphone's: {_audio_text(heard)}")
    report("INFO", "alsa-citizen-into-microphone", _audio_text(citizen))


def _threads(before: dict, after: dict, seconds: float) -> None:
    """What the microphone's process's threads had of the CPU while the clerk spoke, and at which priority."""
    shares = [f"{name} nice {nice}: {cpu - before.get(name, (0, 0.0))[1]:.1f} s" for name, (nice, cpu) in after.items()]
    report("INFO", "microphone-threads", f"in {seconds:.0f} s: {', '.join(shares) or 'no child process'}")


def _echo(unit: str, since_us: int, until_us: int) -> None:
    reports = g.echo_reports(unit, since_us, until_us)
    erle, far_s = g.erle_db(reports)
    per_window = ", ".join(f"{r['reduced']:.0f}" if r["reduced"] is not None else "n/a" for r in reports)
    if not reports:
        per_window = f"none in the window ({g.journal_count(unit, 'echo report')} in the unit's journal of this boot)"
    # Whether the canceller kept up: if it fell behind, it skipped sound, and with it the far end of the echo.
    load = g.canceller_load(reports)
    behind = "" if not load or not load["skipped"] else (
        f"; the canceller fell behind: its thread had {load['cpu_s']:.1f} s of CPU for {load['sound_s']:.1f} s of "
        f"sound and skipped {load['skipped'] * 0.02:.1f} s")
    check("echo-removed-in-guest", erle is not None and erle >= ERLE_MIN_DB and far_s >= 10,
          f"ERLE {erle if erle is None else round(erle, 1)} dB over {far_s:.0f} s of the clerk's voice after "
          f"the first {CONVERGE_S} s (>= {ERLE_MIN_DB:.0f} dB wanted); per 5 s window: {per_window or 'no reports'}"
          + behind)
    # Beside each window's figure, what the canceller was fed: the speaker's underruns, the microphone's
    # overruns, how far the far end ran ahead of the microphone, the clocks (why a window fails).
    for number, r in enumerate(reports, 1):
        reduced = "n/a" if r["reduced"] is None else f"{r['reduced']:.0f} dB"
        report("INFO", "echo-window", f"{number}: {reduced} over {r['far']:.1f} s of far end; {r.get('streams') or '-'}")


def _load(unit: str, camera: dict, idle_cpu: float | None, samples: list[dict]) -> None:
    call_cpu = g.cpu_s_per_min(samples)
    mode = f"{camera.get('format', 'auto')} {camera.get('width', '?')}x{camera.get('height', '?')} @ {camera.get('fps', '?')} fps"
    fmt = lambda x: "?" if x is None else f"{x:.1f}"  # noqa: E731
    report("INFO", "call-cpu", f"appliance CPU {fmt(call_cpu)} s per minute of call (camera {mode}), "
           f"{fmt(idle_cpu)} s per minute idle; the guest's CPUs {fmt(100 * busy) if (busy := g.busy_fraction(samples)) is not None else '?'} % busy "
           f"in the call (load {run('cat', '/proc/loadavg')})")
    service = g.ping_gaps_s(samples, "WatchdogTimestampMonotonic")
    manager = g.ping_gaps_s(samples, "WatchdogLastPingTimestampMonotonic")
    restarts = {s.get("NRestarts") for s in samples}
    missed = g.journal_count(unit, "did not handle events")
    limit = samples[-1].get("WatchdogUSec") if samples else "?"
    # The appliance's pings are seen one by one (15 s apart, sampled every 3 s); systemd pings the hardware
    # watchdog more often than it is sampled, so its gaps here are upper bounds.
    report("INFO", "watchdog-in-call",
           f"appliance pings every {fmt(statistics.median(service)) if service else '?'} s, longest gap "
           f"{fmt(max(service, default=None))} s (WatchdogSec {limit}); restarts {sorted(map(str, restarts))}; "
           f"'did not handle events' logged {missed} times; "
           f"hardware watchdog (RuntimeWatchdogSec 15 s): systemd's pings seen every "
           f"{fmt(statistics.median(manager)) if manager else '?'} s, longest gap at most {fmt(max(manager, default=None))} s")


def _camera_unplug() -> None:
    before = g.video_nodes()
    gone = g.unplug_camera()
    view = _wait_view(PAGE_PORT, lambda v: v.get("notice") == "camera_failed" or v.get("screen") in ("ended", "idle")
                      or v.get("fault") == "camera", FAULT_TIMEOUT_S)
    shown = view.get("notice") == "camera_failed" or view.get("fault") == "camera" or view.get("ended_reason")
    check("camera-unplug-fault", bool(shown) and not view.get("camera_on"),
          f"unbound {gone} ({', '.join(before) or 'no node'} -> {', '.join(g.video_nodes()) or 'none'}); kiosk page: "
          f"screen {view.get('screen')}, notice {view.get('notice')}, fault {view.get('fault')}, camera "
          f"{'on' if view.get('camera_on') else 'off'}, microphone {'on' if view.get('microphone_on') else 'off'}, "
          f"ended {view.get('ended_reason')}")
    removed = run("modprobe", "-r", "vivid", timeout=60)
    report("INFO", "camera-module-removed", removed or "vivid unloaded")
