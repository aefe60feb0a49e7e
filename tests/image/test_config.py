"""The configuration files of image/config: journald, the service manager, logind, sysctl,
Chromium's policy and flags. Key names are checked against the programs that read them."""
from __future__ import annotations

import configparser
import difflib
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.image.imageroot import REPO

CONFIG = REPO / "image/config"
CHROMIUM_BINARY = Path("/usr/lib/chromium/chromium")


def _ini(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str
    parser.read(CONFIG / name)
    return parser


def _known(data: bytes, section: str, key: str) -> bool:
    """systemd's parsers keep their key names in the binary: "Section.Key" in gperf tables
    (journald, logind), or the bare name as a C string (the service manager's table)."""
    return f"{section}.{key}".encode() in data or f"\0{key}\0".encode() in data


@pytest.mark.parametrize(("name", "section", "binary", "wanted"), [
    ("journald.conf", "Journal", "/usr/lib/systemd/systemd-journald",
     {"Storage": "volatile", "RuntimeMaxUse": "32M", "ForwardToSyslog": "no"}),
    ("system.conf", "Manager", "/usr/lib/systemd/systemd",
     {"RuntimeWatchdogSec": "15", "RebootWatchdogSec": "2min", "CtrlAltDelBurstAction": "none",
      "DefaultLimitCORE": "0"}),
    ("logind.conf", "Login", "/usr/lib/systemd/systemd-logind",
     {"NAutoVTs": "0", "ReserveVT": "0", "HandlePowerKey": "ignore", "HandleRebootKey": "ignore"}),
])
def test_systemd_drop_ins(name, section, binary, wanted):
    config = _ini(name)
    assert config.sections() == [section]
    data = Path(binary).read_bytes()
    assert not _known(data, section, "NoSuchSettingAnywhere")
    unknown = [key for key in config[section] if not _known(data, section, key)]
    assert not unknown, f"{name}: {binary} knows no {unknown}"
    assert {k: config[section][k] for k in wanted} == wanted


# Keys the Pi's kernels have but a test machine may lack, with the reason.
MAY_BE_ABSENT_HERE = {
    "kernel.sysrq": "CONFIG_MAGIC_SYSRQ",
    "kernel.yama.ptrace_scope": "CONFIG_SECURITY_YAMA",
    "net.core.bpf_jit_harden": "visible in the initial network namespace only (the tests run in another)",
}


def _sysctl() -> dict[str, str]:
    settings = {}
    for line in (CONFIG / "sysctl.conf").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            settings[key.strip().lstrip("-")] = value.strip()
    return settings


def test_sysctl_keys_exist_in_the_kernel():
    """A misspelt key would be skipped at boot; every key must be one this kernel knows."""
    settings = _sysctl()
    missing = [key for key in settings if not Path("/proc/sys", *key.split(".")).exists()]
    assert set(missing) <= set(MAY_BE_ABSENT_HERE), f"no such sysctl: {sorted(set(missing) - set(MAY_BE_ABSENT_HERE))}"
    assert settings["kernel.sysrq"] == "0"


def test_no_core_dumps_anywhere():
    """A core dump of the appliance or the browser would put a call's memory on disk."""
    assert _sysctl()["kernel.core_pattern"] == "|/bin/false"
    assert _ini("system.conf")["Manager"]["DefaultLimitCORE"] == "0"


def _policy() -> dict:
    return json.loads((CONFIG / "chromium-policy.json").read_text())


def test_chromium_policy_pins_the_local_page():
    policy = _policy()
    assert policy["URLBlocklist"][0] == "*" and "chrome://*" in policy["URLBlocklist"]
    assert policy["URLAllowlist"] == ["http://127.0.0.1:8000"]
    assert (policy["DownloadRestrictions"], policy["DeveloperToolsAvailability"],
            policy["IncognitoModeAvailability"]) == (3, 2, 1)
    assert policy["BrowserAddPersonEnabled"] is policy["PasswordManagerEnabled"] is policy["TranslateEnabled"] is False
    assert policy["AudioCaptureAllowed"] is policy["VideoCaptureAllowed"] is False
    assert policy["ExtensionInstallBlocklist"] == ["*"]


def test_chromium_knows_every_policy():
    """A misspelt or dropped policy is silently ignored by Chromium; the installed binary names them all.

    An unknown name is told apart: close to a name the binary knows means misspelt; no name
    like it means this Chromium dropped the policy (remove it, and check the release notes for
    a replacement if it protected something), so a browser update fails with the right advice.
    """
    if not CHROMIUM_BINARY.exists():
        pytest.fail(f"{CHROMIUM_BINARY} is missing: ./build.sh test installs Debian's chromium")
    data = CHROMIUM_BINARY.read_bytes()
    unknown = [key for key in _policy() if key.encode() not in data]
    if not unknown:
        return
    known = _identifiers(data)
    version = subprocess.run([str(CHROMIUM_BINARY), "--version"], capture_output=True, text=True).stdout.strip()
    problems = []
    for key in unknown:
        near = difflib.get_close_matches(key, known, n=3, cutoff=0.85)
        problems.append(f"{key}: misspelt? Chromium knows {', '.join(near)}" if near else
                        f"{key}: dropped by {version or 'this Chromium'} (no policy of a similar name); remove it "
                        "from image/config/chromium-policy.json and check whether what it blocked needs another policy")
    pytest.fail("Chromium policy file:\n  " + "\n  ".join(problems))


def _identifiers(data: bytes) -> list[str]:
    """Every CamelCase word in the binary: policy names are among them."""
    return sorted({w.decode() for w in re.findall(rb"(?<![A-Za-z0-9])[A-Z][a-z]+(?:[A-Z][a-z0-9]*){1,12}(?![A-Za-z0-9])",
                                                   data)})


def test_policy_check_tells_misspelt_from_dropped():
    """The advice above is right on both kinds: a typo of a live policy, a name that was never there."""
    known = ["PrintingEnabled", "TranslateEnabled", "DefaultWebUsbGuardSetting"]
    assert difflib.get_close_matches("PrintingEnabld", known, cutoff=0.85) == ["PrintingEnabled"]
    assert difflib.get_close_matches("SharedClipboardEnabled", known, cutoff=0.85) == []
    if CHROMIUM_BINARY.exists():
        words = _identifiers(b"\0PrintingEnabled\0xTranslateEnabled\0WebRtcIPHandling\0")
        assert "PrintingEnabled" in words and "WebRtcIPHandling" in words


@pytest.fixture
def kiosk_command(tmp_path):
    """The command line kiosk-session hands to cage (a stub that records it)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    record = tmp_path / "argv.json"
    cage = bin_dir / "cage"
    cage.write_text(f"#!/bin/sh\nexec {sys.executable} -c 'import json,sys; json.dump(sys.argv[1:], open(\"{record}\", \"w\"))' \"$@\"\n")
    cage.chmod(0o755)
    runtime = tmp_path / "run"
    runtime.mkdir()
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "RUNTIME_DIRECTORY": str(runtime)}
    subprocess.run([str(CONFIG / "kiosk-session")], env=env, check=True)
    return json.loads(record.read_text()), runtime


def test_kiosk_session_runs_chromium_in_cage(kiosk_command):
    argv, runtime = kiosk_command
    assert argv[:3] == ["-d", "--", "chromium"]
    assert "-s" not in argv[:argv.index("--")], "cage -s would allow switching to another terminal"
    flags = argv[3:]
    for flag in ("--kiosk", "--app=http://127.0.0.1:8000/", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--noerrdialogs", "--disable-translate",
                 "--disable-features=Translate,TouchpadOverscrollHistoryNavigation",
                 "--overscroll-history-navigation=0", "--autoplay-policy=no-user-gesture-required",
                 "--ozone-platform=wayland", "--deny-permission-prompts", f"--user-data-dir={runtime}/chromium"):
        assert flag in flags, flag


def test_kiosk_session_has_no_dangerous_flags(kiosk_command):
    flags, _ = kiosk_command
    for bad in ("--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream", "--no-sandbox",
                "--remote-debugging-port", "--remote-debugging-pipe", "--disable-web-security", "--incognito",
                "--allow-running-insecure-content", "--unsafely-treat-insecure-origin-as-secure"):
        assert not any(f.split("=")[0] == bad for f in flags), bad


def test_kiosk_session_refuses_to_run_outside_its_unit(tmp_path):
    result = subprocess.run([str(CONFIG / "kiosk-session")], env={"PATH": "/usr/bin:/bin"}, capture_output=True,
                            text=True)
    assert result.returncode != 0 and "amtsklingel-kiosk.service" in result.stderr
