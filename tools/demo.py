"""``./build.sh demo``: central with demo data and one kiosk with fake hardware, on this machine only.

Everything lives in a temporary directory and is gone when the demo stops: by
Ctrl+C, by SIGTERM (a process manager) or SIGHUP (the terminal closed). Central
and the kiosk stop with the demo in each case, and die with it even when it is
killed outright, so the next demo finds its ports free.
"""
from __future__ import annotations

import argparse
import ctypes
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)
PR_SET_PDEATHSIG = 1  # linux/prctl.h


class Stopped(Exception):
    """A stop signal arrived; the demo shuts its children down and exits."""


def die_with_parent() -> None:
    """In the child before exec: the kernel sends SIGTERM when the demo launcher dies, however it dies."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")


def start(cmd: list[str]) -> subprocess.Popen:
    return subprocess.Popen(cmd, cwd=ROOT, preexec_fn=die_with_parent)


def stop(process: subprocess.Popen | None, name: str) -> None:
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        print(f"{name} did not stop within 10 s; killing it", file=sys.stderr)
        process.kill()
        process.wait()


def wait_for(url: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"central did not answer at {url} within {seconds:.0f} s; see its messages above")


def port_free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="./build.sh demo", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=int(os.environ.get("AMTSKLINGEL_DEMO_PORT", "8080")),
                        help="central's port (default 8080, or $AMTSKLINGEL_DEMO_PORT)")
    parser.add_argument("--kiosk-port", type=int, default=int(os.environ.get("AMTSKLINGEL_DEMO_KIOSK_PORT", "8000")),
                        help="the kiosk page's port (default 8000, or $AMTSKLINGEL_DEMO_KIOSK_PORT)")
    parser.add_argument("--enrol", action="store_true",
                        help="start the kiosk without a token: it shows a code to claim it in the admin pages")
    parser.add_argument("--broken", action="append", default=[], metavar="DEVICE[:FRAMES]", type=broken_device,
                        help="a fake device that fails: camera, microphone, speaker or button (repeatable); "
                             "camera:300 or microphone:500 stop after that many frames (the camera makes 30 a "
                             "second, the microphone 50) instead of not starting: try it in a call")
    parser.add_argument("--unit", action="append", default=[], choices=sorted(UNIT_CONDITIONS),
                        help="the fake unit runs hot (82 °C, throttled) or on a weak power supply (under-voltage); "
                             "its health report on the fleet page shows it (repeatable)")
    return parser.parse_args(argv)


UNIT_CONDITIONS = {"hot": "overheat", "undervolted": "undervolt"}  # --unit -> [hardware.unit] setting
BREAKABLE = ("camera", "microphone", "speaker", "button")


def broken_device(text: str) -> tuple[str, int | None]:
    device, _, frames = text.partition(":")
    if device not in BREAKABLE:
        raise argparse.ArgumentTypeError(f"{device!r} is not one of {', '.join(BREAKABLE)}")
    if frames and (device not in ("camera", "microphone") or not frames.isdigit()):
        raise argparse.ArgumentTypeError("only camera and microphone stop after a number of frames, e.g. camera:300")
    return device, int(frames) if frames else None


def hardware_toml(broken: list[tuple[str, int | None]], unit: list[str] = (), holds_file: Path | None = None) -> str:
    """The kiosk's [hardware] settings: the fake backend, with the devices told to fail and the unit's
    conditions (``--unit hot``); ``holds_file``: while it holds text, the fake camera shows it as a QR code
    held up (appliance/hardware/fake/held_code.py)."""
    lines = ['[hardware]', 'backend = "fake"']
    sections: dict[str, list[str]] = {}
    for device, frames in broken:
        sections.setdefault(device, []).append("fail = true" if frames is None else f"fail_after_frames = {frames}")
    if holds_file is not None:
        sections.setdefault("camera", []).append(f"holds_file = {json.dumps(str(holds_file))}")
    for device, settings in sections.items():
        lines += [f"[hardware.{device}]", *settings]
    if unit:
        lines += ["[hardware.unit]", *(f"{UNIT_CONDITIONS[condition]} = true" for condition in dict.fromkeys(unit))]
    return "\n".join(lines) + "\n"


def demo_bundle(workdir: Path) -> tuple[Path, Path] | None:
    """Throwaway update keys and a signed bundle of a next version (tests/rauc_bundles.py), so the admin's
    Bundles page and a rollout have one to show: (keyring, bundle), or None where rauc or mke2fs are missing."""
    if not (shutil.which("rauc") and shutil.which("mke2fs") and shutil.which("mksquashfs")):
        print("  (no demo bundle: rauc, mke2fs or mksquashfs is missing; ./build.sh installs them)", flush=True)
        return None
    sys.path.insert(0, str(ROOT))
    from appliance.fleet.image import software_version
    from tests.rauc_bundles import make_bundle, make_keys
    keys = make_keys(workdir / "update-keys", "demo city")
    version = software_version(Path("/nonexistent"))[:58] + "-next"  # the demo kiosk runs the package's version
    return keys.ca_pem, make_bundle(workdir / "bundles-made", keys, version)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    for port, option in ((args.port, "--port"), (args.kiosk_port, "--kiosk-port")):
        if not port_free(port):
            raise SystemExit(f"port {port} is in use; stop what runs there or choose another with {option}")

    def on_signal(signum: int, frame) -> None:
        for sig in STOP_SIGNALS:  # a second signal while stopping does not cut the clean-up short
            signal.signal(sig, signal.SIG_IGN)
        raise Stopped(signal.Signals(signum).name)
    for sig in STOP_SIGNALS:
        signal.signal(sig, on_signal)

    workdir = Path(tempfile.mkdtemp(prefix="amtsklingel-demo-"))
    central = kiosk = None
    try:
        config = workdir / "central.toml"
        # Plain http on localhost: browsers treat localhost as a secure context, so
        # camera, microphone and notifications work without a certificate.
        metrics_token = secrets.token_urlsafe(32)
        bundle = demo_bundle(workdir)
        config.write_text(f'database_url = "sqlite:///{workdir}/central.db"\nhost = "127.0.0.1"\n'
                          f'port = {args.port}\nsecure_cookies = false\nmetrics_token = "{metrics_token}"\n'
                          + (f'update_keyring = "{bundle[0]}"\n' if bundle else ""))
        central_cmd = [sys.executable, "-m", "central", "--config", str(config)]
        creds = json.loads(subprocess.run([*central_cmd, "demo-data"], check=True, capture_output=True, text=True,
                                          cwd=ROOT, preexec_fn=die_with_parent).stdout)
        if bundle:
            subprocess.run([*central_cmd, "bundles", "add", str(bundle[1])], check=True, capture_output=True,
                           cwd=ROOT, preexec_fn=die_with_parent)
        central = start([*central_cmd, "serve"])
        base = f"http://localhost:{args.port}"
        wait_for(base + "/api/status")
        print(f"""
  Amtsklingel demo is running (data in {workdir}, deleted when you stop).

  Staff console   {base}/console
      clerk:  {creds['clerk_user']}  /  {creds['clerk_password']}
      admin:  {creds['admin_user']}  /  {creds['admin_password']}
  Public status   {base}/status   (JSON: {base}/api/status)
  Visit from home {base}/visit   (one office's link for a city's website: {base}/visit/buergerbuero;
      any browser with a camera, no account; the clerk above picks the visitor up)
  Interpreter     in a call, the console's "Invite interpreter or colleague" gives a one-time link
      ({base}/guest#…); open it in another browser window, check camera and microphone, and let the guest in
  Appointments    {base}/booking   (the Standesamt takes them: {base}/booking/office/standesamt; the
      booking's page gives a code, a QR code for the kiosk and a calendar file, and lets the citizen join
      from 10 minutes before the slot; slots are set per office in the admin area)
  Fleet (admin)   {base}/admin/fleet   (Prometheus: curl -H 'Authorization: Bearer {metrics_token}' {base}/metrics)
  Kiosk page      http://127.0.0.1:{args.kiosk_port}/
      the simulated kiosk: test-pattern camera, synthetic microphone; the call
      button is the big on-screen button, or Space/Enter (hold 1 s = long press;
      hold 5 s on the start screen = the self-test for the person installing a unit;
      --broken camera (or microphone, speaker, button) shows how a failing device looks;
      --unit hot or --unit undervolted, how the fleet page shows a unit in trouble)

  Fleet           {base}/admin/fleet   (as admin: each kiosk's settings, self-test, restart, reboot;
                  settings for all kiosks at {base}/admin/fleet/settings, audit log at {base}/admin/audit)
  Bundles         {base}/admin/bundles   (update bundles; {"one signed with throwaway demo keys is there" if bundle
                                          else "none: rauc is missing"}, kiosks fetch it with their token;
                  the demo kiosk installs an offered bundle into fake A/B slots, announces the restart on
                  its start screen, restarts into the new version and commits it after its health check)
  Updates         {base}/admin/updates   (roll a bundle out: pick the demo kiosk as canary, "As soon as
                  nobody uses the kiosk", and watch its state here and in the fleet page's Update column)

  Open the kiosk page and the console side by side. Stop with Ctrl+C.
""", flush=True)
        holds = workdir / "camera-holds.txt"
        print(f"""  A booking at the kiosk: choose "I have an appointment" on the kiosk page, then hold the booking's
      QR code up to the fake camera by writing its link into a file:
          echo '{base}/booking/CODE' > {holds}      (rm {holds} takes it away again)
      or type the code on the kiosk's keypad ("Type the code"). At another time the kiosk says when it is.
""", flush=True)
        if args.enrol:
            print(f"  The kiosk starts without a token and shows a code: log in as admin and enter it at\n"
                  f"  {base}/admin/kiosks (or open the QR code's link).\n", flush=True)
        else:
            print("  To try enrolment by code: start the demo with --enrol (./build.sh demo --enrol); the kiosk\n"
                  "  then starts without a token and shows a code to claim on the admin's Kiosks page.\n", flush=True)
        appliance_config = workdir / "appliance.toml"
        token = "" if args.enrol else f'token = "{creds["kiosk_token"]}"\n'
        appliance_config.write_text(f'central_url = "{base}"\n{token}data_dir = "{workdir / "kiosk-data"}"\n'
                                    f'[kiosk]\nport = {args.kiosk_port}\n[update]\nbackend = "fake"\n'
                                    + hardware_toml(args.broken, args.unit, holds))
        kiosk_cmd = [sys.executable, "-m", "appliance", "--config", str(appliance_config)]
        kiosk = start(kiosk_cmd)
        while central.poll() is None:
            if kiosk.poll() == 0:  # "restart" from the fleet page, or an update's: start it again, as systemd does
                print("  the kiosk restarts (the fleet page asked, or for an update's trial)", flush=True)
                kiosk = start(kiosk_cmd)
            elif kiosk.poll() is not None:
                break
            time.sleep(0.5)
        if kiosk.poll() is not None:
            print(f"the kiosk stopped (exit status {kiosk.returncode}); stopping the demo", file=sys.stderr)
        else:
            print(f"central stopped (exit status {central.returncode}); stopping the demo", file=sys.stderr)
    except (Stopped, KeyboardInterrupt):
        pass
    finally:
        for sig in STOP_SIGNALS:
            signal.signal(sig, signal.SIG_IGN)
        stop(kiosk, "the kiosk")
        stop(central, "central")
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
