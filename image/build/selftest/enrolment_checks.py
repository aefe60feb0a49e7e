"""Enrolment by code, as facilities staff see it: the unit boots without a token and shows a code;
the boot test's host claims it in central's admin pages (image/build/claim-code.py); the unit stores
its token on the data partition and goes to the idle screen, online.

The code goes to the console as ``AMTSKLINGEL-ENROL-CODE XXXX-XXXX`` (a new line for each new code:
one expires after some minutes); the host waits for that line. The token is never printed.
"""
from __future__ import annotations

import pwd
import time
import tomllib
import urllib.parse
from pathlib import Path

from checklog import check, report, run
from kiosk_checks import PAGE_PORT, kiosk_view

BUILT_IN = Path("/usr/share/amtsklingel/appliance.toml")
UNIT_SETTINGS = Path("/var/lib/amtsklingel/appliance.toml")
DATA = Path("/var/lib/amtsklingel")
TOKEN = DATA / "kiosk-token"
CODE_LINE = "AMTSKLINGEL-ENROL-CODE"
# Until an admin claims the code; the host claims it as soon as it sees the line.
ENROL_TIMEOUT_S = 600
POLL_S = 2


def settings() -> dict:
    """The appliance's settings as it layers them: the image's built-in ones, then the unit's own
    (from the boot partition), table by table."""
    merged: dict = {}
    for path in (BUILT_IN, UNIT_SETTINGS):
        if path.exists():
            merged |= tomllib.loads(path.read_text())
    return merged


def central_host() -> str:
    return urllib.parse.urlsplit(str(settings().get("central_url", ""))).hostname or ""


def built_in_central() -> None:
    """The image was built with ./build.sh image --central: nothing but fake hardware on the boot partition."""
    built_in = tomllib.loads(BUILT_IN.read_text()) if BUILT_IN.exists() else {}
    unit = tomllib.loads(UNIT_SETTINGS.read_text()) if UNIT_SETTINGS.exists() else {}
    ok = bool(built_in.get("central_url")) and "central_url" not in unit
    check("built-in-central", ok, f"{BUILT_IN}: central_url {built_in.get('central_url')!r}, hardware "
          f"{built_in.get('hardware')}; the unit's own settings: {sorted(unit) or 'none'}"
          + ("" if ok else "; build the test image with ./build.sh image --central http://central.amtsklingel.test:8080"))
    check("no-token-before-enrolment", not (TOKEN.exists() and TOKEN.stat().st_size),
          f"{TOKEN} {'exists' if TOKEN.exists() else 'absent'}: the unit has to enrol by code")


def _code(view: dict) -> str:
    return str((view.get("enrol") or {}).get("code") or "")


def enrol_by_code(port: int = PAGE_PORT) -> None:
    """Shows the code on the console until the unit is enrolled (idle screen, online)."""
    started = time.monotonic()
    deadline = started + ENROL_TIMEOUT_S
    shown: list[str] = []
    view: dict = {}
    while time.monotonic() < deadline:
        try:
            view = kiosk_view(port, timeout=10)
        except OSError:
            time.sleep(POLL_S)
            continue
        code = _code(view)
        if view.get("screen") == "enrol" and code and code not in shown:
            if not shown:
                enrol = view.get("enrol") or {}
                check("enrol-screen", True, f"code shown after {time.monotonic() - started:.0f} s, serial "
                      f"{enrol.get('serial')}, QR code for {enrol.get('claim_url')}")
            shown.append(code)
            print(f"{CODE_LINE} {code}", flush=True)
        if view.get("screen") not in ("enrol", None) and view.get("online") and shown:
            break
        time.sleep(POLL_S)
    if not shown:
        check("enrol-screen", False, f"no code on the screen within {ENROL_TIMEOUT_S} s: screen {view.get('screen')}, "
              f"online {view.get('online')}, fault {view.get('fault')}")
        return
    enrolled = view.get("screen") not in ("enrol", None) and bool(view.get("online"))
    # Fields separated by "; " (the host reads location and departments back).
    departments = " ".join(str(d.get("slug", "?")) for d in view.get("departments", []))
    check("enrolled", enrolled, f"location {view.get('location')!r}; departments {departments or 'none'}; "
          f"screen {view.get('screen')}, online {view.get('online')}; {len(shown)} code(s) shown; "
          f"{time.monotonic() - started:.0f} s")


def token_stored() -> None:
    """Only the appliance may read its token, and it is on the data partition (survives a restart)."""
    if not TOKEN.exists():
        check("token-stored", False, f"{TOKEN} absent after enrolment")
        return
    st = TOKEN.stat()
    owner = pwd.getpwuid(st.st_uid).pw_name
    partition = run("findmnt", "-no", "SOURCE", "--target", str(TOKEN))
    label = run("lsblk", "-no", "PARTLABEL", partition) if partition.startswith("/dev/") else "?"
    mode = st.st_mode & 0o7777
    check("token-stored", mode == 0o600 and owner == "amtsklingel" and st.st_size > 0 and label == "data",
          f"{TOKEN}: mode {mode:04o}, owner {owner}, {st.st_size} bytes, on {partition} (partition {label})")
    stored = DATA / "settings.json"
    report("INFO", "settings-stored", f"{stored}: " + (f"{stored.stat().st_size} bytes, mode "
                                                      f"{stored.stat().st_mode & 0o7777:04o}" if stored.exists()
                                                      else "not (yet) written"))
