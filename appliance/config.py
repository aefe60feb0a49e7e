"""The appliance's settings: the image's built-in file, then /etc/amtsklingel/appliance.toml, plus the token.

The city builds its image once with its central's address and, where central's certificate
comes from the city's own CA, that CA (``./build.sh image --central URL --ca FILE`` writes
/usr/share/amtsklingel/appliance.toml). /etc/amtsklingel/appliance.toml, from the boot
partition, may add to it or override it, table by table: a ``[hardware]`` there replaces the
built-in ``[hardware]`` as a whole. A unit without a token (its token file absent or empty)
starts in enrolment mode and shows a code to claim it in central.

Every mistake stops start-up with a message for the person installing the unit;
no setting, least of all a secret or the hardware backend, falls back silently.
"""
from __future__ import annotations

import dataclasses
import ipaddress
import ssl
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from protocol.candidates import DEFAULT_NETWORKS, parse_networks
from protocol.errors import AmtsklingelError
from protocol.languages import CITIZEN_LANGUAGES

BUILTIN_PATH = Path("/usr/share/amtsklingel/appliance.toml")
DEFAULT_PATH = Path("/etc/amtsklingel/appliance.toml")
DEFAULT_DATA_DIR = Path("/var/lib/amtsklingel")
TOKEN_NAME = "kiosk-token"
LANGUAGES = CITIZEN_LANGUAGES  # the kiosk page ships all of them
ALLOWED = {"central_url", "token", "token_file", "ca_file", "data_dir", "hardware", "kiosk", "languages",
           "ice_networks", "call_connect_timeout_s", "update"}
UPDATE_BACKENDS = ("rauc", "fake")
PATH_SETTINGS = ("token_file", "ca_file", "data_dir")  # relative to the file that sets them
HARDWARE_MISSING = ('set [hardware] backend = "pi" on a Raspberry Pi, or "fake" for a test set-up '
                    '(test pattern, synthetic tone, keyboard as call button)')


class ConfigError(AmtsklingelError, ValueError):
    """The appliance configuration cannot be used as written."""


@dataclass(frozen=True)
class ApplianceConfig:
    central_url: str
    hardware: dict[str, Any]
    # None: the unit is not enrolled yet; it shows a code to claim it (appliance/fleet/enrol.py)
    # and stores the token it is sent in ``token_path``.
    token: str | None = None
    data_dir: Path = DEFAULT_DATA_DIR
    token_file: Path | None = None            # default: data_dir / kiosk-token
    ca_file: Path | None = None               # set: central's certificate is checked against this CA only
    kiosk_host: str = "127.0.0.1"
    kiosk_port: int = 8000
    languages: tuple[str, ...] = LANGUAGES
    # Where the clerk's ICE candidates may point (besides central's TURN servers): the city's own
    # networks. Anything else, e.g. 169.254.169.254, is dropped before the kiosk's ICE sees it.
    ice_networks: tuple[str, ...] = DEFAULT_NETWORKS
    # A call whose media has not connected by then is reported failed (central has its own bound too).
    call_connect_timeout_s: float = 30.0
    # Remote updates (appliance/update/): {"backend": "rauc" | "fake", "trial_deadline_s": 180};
    # empty: this unit installs no updates and tells central so.
    update: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        # Also for a configuration built in code (tests, tools): the same rules as for the files.
        check_central_url(self.central_url)
        check_hardware(self.hardware)
        check_update(self.update)

    @property
    def token_path(self) -> Path:
        return self.token_file or self.data_dir / TOKEN_NAME

    def with_token(self, token: str) -> ApplianceConfig:
        return dataclasses.replace(self, token=token)

    @classmethod
    def load(cls, *paths: Path) -> ApplianceConfig:
        """Read the settings files in order (default: the image's built-in one, then /etc's); later wins.

        A file that does not exist is left out; at least one must exist.
        """
        paths = paths or (BUILTIN_PATH, DEFAULT_PATH)
        merged: dict[str, Any] = {}
        found = []
        for path in paths:
            try:
                raw = tomllib.loads(path.read_text(encoding="utf-8"))
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise ConfigError(f"{path} cannot be read ({exc.strerror})") from None
            except tomllib.TOMLDecodeError as exc:
                raise ConfigError(f"{path}: not valid TOML ({exc})") from None
            _check_names(raw, str(path))
            merged.update(_resolve_paths(raw, path.parent))
            found.append(path)
        if not found:
            raise ConfigError(f"no settings file: neither {' nor '.join(map(str, paths))} exists. Build the image "
                              "with --central, or put appliance.toml on the boot partition; for a test set-up "
                              "copy docs/appliance.example.toml there")
        where = " or ".join(map(str, found))
        if "hardware" not in merged:
            raise ConfigError(f"{where}: {HARDWARE_MISSING}")
        if "central_url" not in merged:
            raise ConfigError(f"{where}: central_url is missing; it is the city server's address, e.g. "
                              "central_url = \"https://buergerbuero.musterdorf.de\"")
        try:
            return cls.from_dict(merged)
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from None

    @classmethod
    def from_dict(cls, raw: dict[str, Any], base: Path = Path(".")) -> ApplianceConfig:
        """One settings table; relative paths in it are taken from ``base``."""
        _check_names(raw, "settings")
        raw = _resolve_paths(raw, base)
        url = raw.get("central_url")
        check_central_url(url)
        if "hardware" not in raw:
            raise ConfigError(HARDWARE_MISSING)
        kiosk = raw.get("kiosk", {})
        port = kiosk.get("port", 8000)
        if not isinstance(port, int) or not 1 <= port <= 65535:
            raise ConfigError("kiosk.port must be a port number such as 8000")
        languages = tuple(raw.get("languages", LANGUAGES))
        if bad := [lang for lang in languages if lang not in LANGUAGES]:
            raise ConfigError(f"languages: {', '.join(bad)} not shipped; available: {', '.join(LANGUAGES)}")
        networks = raw.get("ice_networks", DEFAULT_NETWORKS)
        if not isinstance(networks, (list, tuple)):
            raise ConfigError('ice_networks must be a list of networks, e.g. ["10.0.0.0/8", "192.168.0.0/16"]')
        try:
            parse_networks(networks)
        except ValueError as exc:
            raise ConfigError(f"ice_networks: {exc}") from None
        timeout = raw.get("call_connect_timeout_s", 30.0)
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 1 <= timeout <= 600:
            raise ConfigError("call_connect_timeout_s must be a number of seconds between 1 and 600, e.g. 30")
        data_dir = raw.get("data_dir", DEFAULT_DATA_DIR)
        ca_file = raw.get("ca_file")
        if ca_file is not None:
            check_ca_file(ca_file)
        token_file = raw.get("token_file")
        # The page is for the local browser only: never listen on a network address.
        return cls(central_url=url.rstrip("/"), hardware=dict(raw["hardware"]), token=_token(raw, data_dir),
                   data_dir=data_dir, token_file=token_file, ca_file=ca_file, kiosk_port=port,
                   languages=languages, ice_networks=tuple(networks), call_connect_timeout_s=float(timeout),
                   update=dict(raw.get("update", {})) if isinstance(raw.get("update", {}), dict) else raw["update"])


def is_test_host(host: str) -> bool:
    """Loopback, or a name under .test (RFC 6761, never on the internet): where plain http may be used."""
    host = host.rstrip(".").lower()
    if host == "localhost" or host.endswith(".localhost") or host == "test" or host.endswith(".test"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_central_url(url: str) -> None:
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError("central_url must be the city server's address, e.g. "
                          "central_url = \"https://buergerbuero.musterdorf.de\"")
    if parts.scheme == "http" and not is_test_host(parts.hostname):
        raise ConfigError(f"central_url {url}: use https://. Plain http:// is only for a test set-up, with central "
                          "on this machine (localhost, 127.0.0.1, ::1) or under a .test name; anywhere else the "
                          "connection must be encrypted and central's certificate checked")


def check_hardware(hardware: Any) -> None:
    if not isinstance(hardware, dict) or not hardware:
        raise ConfigError(HARDWARE_MISSING)
    if hardware.get("backend") not in ("pi", "fake"):
        raise ConfigError("hardware.backend must be \"pi\" (camera, GPIO, ALSA) or \"fake\" (test pattern, "
                          "synthetic tone, keyboard button)")


def check_update(update: Any) -> None:
    if not isinstance(update, dict):
        raise ConfigError('[update] must be a table, e.g. [update] backend = "rauc"')
    if unknown := sorted(set(update) - {"backend", "trial_deadline_s"}):
        raise ConfigError(f"[update]: unknown setting(s) {', '.join(unknown)}; allowed: backend, trial_deadline_s")
    if update and update.get("backend") not in UPDATE_BACKENDS:
        raise ConfigError('update.backend must be "rauc" (the image\'s A/B slots) or "fake" (slots in a file, '
                          'for a test set-up)')
    deadline = update.get("trial_deadline_s", 180)
    if isinstance(deadline, bool) or not isinstance(deadline, (int, float)) or not 10 <= deadline <= 3600:
        raise ConfigError("update.trial_deadline_s must be a number of seconds between 10 and 3600, e.g. 180")


def check_ca_file(path: Path) -> None:
    """The CA must be readable PEM now, not when the first connection fails."""
    try:
        ssl.create_default_context(cafile=str(path))
    except FileNotFoundError:
        raise ConfigError(f"ca_file {path} does not exist; it should be the CA certificate (PEM) that issued "
                          "central's certificate") from None
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"ca_file {path} is not a CA certificate in PEM format ({exc}); use the CA certificate "
                          "that issued central's certificate") from None


def _check_names(raw: dict[str, Any], where: str) -> None:
    if unknown := sorted(set(raw) - ALLOWED):
        raise ConfigError(f"{where}: unknown setting(s) {', '.join(unknown)}; allowed: {', '.join(sorted(ALLOWED))}")


def _resolve_paths(raw: dict[str, Any], base: Path) -> dict[str, Any]:
    raw = dict(raw)
    for name in PATH_SETTINGS:
        if name in raw:
            if not isinstance(raw[name], (str, Path)) or not str(raw[name]):
                raise ConfigError(f"{name} must be a file or folder name, e.g. {name} = \"/var/lib/amtsklingel\"")
            raw[name] = base / raw[name]  # an absolute path stays as it is
    return raw


def _token(raw: dict[str, Any], data_dir: Path) -> str | None:
    """The token written in the settings, else the one in the token file; None when there is none yet."""
    if "token" in raw and "token_file" in raw:
        raise ConfigError("set either token or token_file, not both")
    if "token" in raw:
        token = raw["token"]
        where = "token"
    else:
        path = raw.get("token_file", data_dir / TOKEN_NAME)
        try:
            token = path.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"token_file {path} cannot be read ({getattr(exc, 'strerror', exc)}); delete it "
                              "to enrol the unit again") from None
        if not token:
            return None
        where = f"the token in {path}"
    if not isinstance(token, str) or "." not in token or len(token) < 20 or any(c.isspace() for c in token):
        raise ConfigError(f"{where} is malformed; delete the token file to enrol the unit again by code "
                          "(or create a token in central's admin page, Kiosks)")
    return token
