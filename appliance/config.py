"""The appliance's settings: /etc/amtsklingel/appliance.toml plus the token on the data partition.

Every mistake stops start-up with a message for the person installing the unit;
no setting, least of all a secret, falls back silently.
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from protocol.candidates import DEFAULT_NETWORKS, parse_networks
from protocol.errors import AmtsklingelError

DEFAULT_PATH = Path("/etc/amtsklingel/appliance.toml")
LANGUAGES = ("de", "en", "tr", "ar", "uk", "ru")


class ConfigError(AmtsklingelError, ValueError):
    """The appliance configuration cannot be used as written."""


@dataclass(frozen=True)
class ApplianceConfig:
    central_url: str
    token: str
    hardware: dict[str, Any] = field(default_factory=lambda: {"backend": "fake"})
    kiosk_host: str = "127.0.0.1"
    kiosk_port: int = 8000
    languages: tuple[str, ...] = LANGUAGES
    # Where the clerk's ICE candidates may point (besides central's TURN servers): the city's own
    # networks. Anything else, e.g. 169.254.169.254, is dropped before the kiosk's ICE sees it.
    ice_networks: tuple[str, ...] = DEFAULT_NETWORKS
    # A call whose media has not connected by then is reported failed (central has its own bound too).
    call_connect_timeout_s: float = 30.0

    @classmethod
    def load(cls, path: Path = DEFAULT_PATH) -> ApplianceConfig:
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"{path} is missing. The first-boot service creates it from the enrolment; "
                              "for a test set-up copy docs/appliance.example.toml there") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML ({exc})") from None
        return cls.from_dict(raw, base=path.parent)

    @classmethod
    def from_dict(cls, raw: dict[str, Any], base: Path = Path(".")) -> ApplianceConfig:
        allowed = {"central_url", "token", "token_file", "hardware", "kiosk", "languages", "ice_networks",
                   "call_connect_timeout_s"}
        if unknown := sorted(set(raw) - allowed):
            raise ConfigError(f"unknown setting(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}")
        url = raw.get("central_url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ConfigError("central_url must be the city server's address, e.g. "
                              "central_url = \"https://buergerbuero.musterdorf.de\"")
        token = _token(raw, base)
        kiosk = raw.get("kiosk", {})
        port = kiosk.get("port", 8000)
        if not isinstance(port, int) or not 1 <= port <= 65535:
            raise ConfigError("kiosk.port must be a port number such as 8000")
        languages = tuple(raw.get("languages", LANGUAGES))
        if bad := [lang for lang in languages if lang not in LANGUAGES]:
            raise ConfigError(f"languages: {', '.join(bad)} not shipped; available: {', '.join(LANGUAGES)}")
        hardware = dict(raw.get("hardware", {"backend": "fake"}))
        if hardware.get("backend") not in ("pi", "fake"):
            raise ConfigError("hardware.backend must be \"pi\" (camera, GPIO, ALSA) or \"fake\" (test pattern, "
                              "synthetic tone, keyboard button)")
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
        # The page is for the local browser only: never listen on a network address.
        return cls(central_url=url.rstrip("/"), token=token, hardware=hardware, kiosk_port=port,
                   languages=languages, ice_networks=tuple(networks), call_connect_timeout_s=float(timeout))


def _token(raw: dict[str, Any], base: Path) -> str:
    if "token" in raw and "token_file" in raw:
        raise ConfigError("set either token or token_file, not both")
    if "token_file" in raw:
        path = base / raw["token_file"]
        try:
            token = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"token_file {path} cannot be read ({exc.strerror}); enrol the unit again") from None
    else:
        token = raw.get("token", "")
    if not isinstance(token, str) or "." not in token or len(token) < 20:
        raise ConfigError("the kiosk token is missing or malformed; create one in central's admin page "
                          "(Kiosks -> Add) and put it into token_file")
    return token
