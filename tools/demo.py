"""``./build.sh demo``: central with demo data and one kiosk with fake hardware, on this machine only.

Everything lives in a temporary directory and is gone when the demo stops.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PORT = int(os.environ.get("AMTSKLINGEL_DEMO_PORT", "8080"))
KIOSK_PORT = int(os.environ.get("AMTSKLINGEL_DEMO_KIOSK_PORT", "8000"))


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


def main() -> int:
    for port, variable in ((PORT, "AMTSKLINGEL_DEMO_PORT"), (KIOSK_PORT, "AMTSKLINGEL_DEMO_KIOSK_PORT")):
        if not port_free(port):
            raise SystemExit(f"port {port} is in use; stop what runs there or set {variable}=<another port>")
    workdir = Path(tempfile.mkdtemp(prefix="amtsklingel-demo-"))
    config = workdir / "central.toml"
    # Plain http on localhost: browsers treat localhost as a secure context, so
    # camera, microphone and notifications work without a certificate.
    config.write_text(f'database_url = "sqlite:///{workdir}/central.db"\nhost = "127.0.0.1"\nport = {PORT}\n'
                      'secure_cookies = false\n')
    central_cmd = [sys.executable, "-m", "central", "--config", str(config)]
    creds = json.loads(subprocess.run([*central_cmd, "demo-data"], check=True, capture_output=True, text=True,
                                      cwd=ROOT).stdout)
    central = subprocess.Popen([*central_cmd, "serve"], cwd=ROOT)
    base = f"http://localhost:{PORT}"
    kiosk = None
    try:
        wait_for(base + "/api/status")
        print(f"""
  Amtsklingel demo is running (data in {workdir}, deleted when you stop).

  Staff console   {base}/console
      clerk:  {creds['clerk_user']}  /  {creds['clerk_password']}
      admin:  {creds['admin_user']}  /  {creds['admin_password']}
  Public status   {base}/status   (JSON: {base}/api/status)
  Kiosk page      http://127.0.0.1:{KIOSK_PORT}/
      the simulated kiosk: test-pattern camera, synthetic microphone; the call
      button is the big on-screen button, or Space/Enter (hold 1 s = long press)

  Open the kiosk page and the console side by side. Stop with Ctrl+C.
""", flush=True)
        appliance_config = workdir / "appliance.toml"
        appliance_config.write_text(f'central_url = "{base}"\ntoken = "{creds["kiosk_token"]}"\n'
                                    f'[kiosk]\nport = {KIOSK_PORT}\n[hardware]\nbackend = "fake"\n')
        kiosk = subprocess.Popen([sys.executable, "-m", "appliance", "--config", str(appliance_config)], cwd=ROOT)
        kiosk.wait()
    except KeyboardInterrupt:
        pass
    finally:
        if kiosk is not None and kiosk.poll() is None:
            kiosk.send_signal(signal.SIGINT)
            try:
                kiosk.wait(10)
            except subprocess.TimeoutExpired:
                kiosk.kill()
        central.send_signal(signal.SIGINT)
        try:
            central.wait(10)
        except subprocess.TimeoutExpired:
            central.kill()
        for f in workdir.iterdir():
            f.unlink()
        workdir.rmdir()
    return 0


if __name__ == "__main__":
    sys.exit(main())
