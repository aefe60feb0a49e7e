"""Central's settings: one TOML file, checked completely at start-up.

A wrong or missing setting stops the server with a message that names the
setting and says what to write instead; nothing falls back silently.
"""
from __future__ import annotations

import dataclasses
import ipaddress
import os
import shutil
import tomllib
import urllib.parse
from pathlib import Path
from typing import Any

from central.cluster.keeper import STALL_LIMIT_S
from central.cluster.valkey_clients import EXAMPLE as SENTINEL_EXAMPLE
from central.cluster.valkey_clients import SCHEME as SENTINEL_SCHEME
from central.cluster.valkey_clients import TLS_SCHEME as SENTINEL_TLS_SCHEME
from central.cluster.valkey_clients import SentinelUrl, is_sentinel
from central.cluster.valkey_tls import TLS_EXAMPLE, ValkeyUrlError, check_plain_url
from central.live.ice import TURN_SCHEMES, TurnRest, TurnSecret
from protocol.candidates import DEFAULT_NETWORKS, parse_networks
from protocol.errors import AmtsklingelError
from protocol.messages import IceServer


class ConfigError(AmtsklingelError, ValueError):
    """The configuration file cannot be used as written."""


@dataclasses.dataclass(frozen=True)
class Config:
    database_url: str
    host: str = "127.0.0.1"
    port: int = 8080
    # Browsers keep Secure cookies only over HTTPS (and on localhost); switch off
    # only behind a test harness, never in production.
    secure_cookies: bool = True
    session_hours: float = 8.0
    ice_servers: tuple[IceServer, ...] = ()  # handed out as they are: STUN, or TURN with long-lived users
    # coturn with a shared secret (use-auth-secret): each peer gets its own credentials, valid this long
    # (central/live/ice.py). The secret comes from turn_secret_file or the environment, never from here.
    turn_urls: tuple[str, ...] = ()
    turn_secret_file: str | None = None
    # coturn checks credentials when a relay is allocated, as a call sets up; the relay then lives on with the
    # call. Every call.start and call.assigned carries fresh ones, so an hour is plenty and a leaked one soon useless.
    turn_credential_s: float = 3600.0
    turn_secret: TurnSecret | None = dataclasses.field(default=None, repr=False)
    # Networks ICE candidates may point into (CIDR), besides the TURN servers' own addresses:
    # central drops every other candidate between kiosk and console (protocol/candidates.py).
    ice_networks: tuple[str, ...] = DEFAULT_NETWORKS
    # How long a waiting visit keeps its place while its kiosk reconnects.
    resume_grace_s: float = 120.0
    # How long a resume token (held by the kiosk) can put a visit back after central restarted:
    # longer than any wait, short enough that an old token is soon worthless (docs/decisions/0005).
    resume_token_hours: float = 8.0
    # A picked-up call whose media has not connected by then is given up: the citizen waits again.
    call_connect_timeout_s: float = 30  # an int by default: the console page renders it as is
    # Visitors from home (/visit) a department takes at a time, waiting or in a call, unless its admin page
    # sets another number: the rest are told to try again later (central/live/home_side.py).
    online_visits_per_department: int = 10
    # Expected handling time of a department before it has any history.
    default_handling_s: int = 300
    timezone: str = "Europe/Berlin"  # the city's; new departments' hours and the statistics' days use it
    public_url: str | None = None  # as seen by browsers; used for the Origin check
    # Reverse proxies whose X-Forwarded-For central believes (addresses or networks);
    # without them every client behind the proxy would look like the proxy.
    trusted_proxies: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    # The bearer token Prometheus sends for GET /metrics; without it /metrics is off (404).
    metrics_token: str | None = None
    # Update bundles (docs/updates.md): the CA certificates (PEM) a bundle's signature must chain to.
    # Without it central refuses every bundle, as a unit without a keyring would.
    update_keyring: str | None = None
    update_compatible: str = "amtsklingel-rpi-arm64"  # RAUC's compatible of the units (image/config/rauc)
    # Where bundle files are kept; by default "bundles" beside the SQLite database. Several central
    # processes (PostgreSQL) must share it, e.g. on NFS, so every one can serve every bundle.
    bundle_dir: str | None = None
    bundle_max_mb: int = 4096  # the largest bundle the admin page accepts
    # The city's mail server for the optional confirmation of a booking (central/bookings/mail.py); without
    # smtp_host none is offered. It must relay for central without a login (by address, on the city's network).
    # The citizen's address is used for that one message and stored nowhere.
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_from: str | None = None      # e.g. "termine@musterdorf.de"
    smtp_starttls: bool = True        # refuse to send unless the server offers STARTTLS
    # Several centrals (docs/decisions/0008-several-centrals.md): the Redis or Valkey server all of them share.
    # Set, this central leads only while it holds the lease there and stands by otherwise, and its waiting
    # rooms are written through to it; unset (the default), one central keeps them in memory. The URL may carry
    # a password (redis://:secret@host:6379/0): set it in AMTSKLINGEL_REDIS_URL instead of this file. Valkey under
    # Sentinel (a master, replicas, three sentinels; docs/deploy.md) is named by its sentinels and the master's name:
    # redis+sentinel://:secret@h1:26379,h2:26379,h3:26379/amtsklingel[/0][?sentinel_password=...]
    # rediss:// and rediss+sentinel:// speak TLS, verified against ?ssl_ca_certs=/path/to/ca.pem (or the machine's
    # CAs), with ssl_certfile/ssl_keyfile where Valkey demands client certificates (central/cluster/valkey_tls.py).
    redis_url: str | None = dataclasses.field(default=None, repr=False)
    # Several centrals: the leader keeps its lease while its event loop has run within this many seconds
    # (central/cluster/keeper.py). Longer tolerates a busier machine; a hung leader is replaced after about
    # this plus a second. Raise HAProxy's "timeout check" with it (docs/deploy.md).
    lease_stall_limit_s: float = STALL_LIMIT_S

    @property
    def bundle_directory(self) -> Path | None:
        """Where bundle files are kept; None when neither set nor derivable (PostgreSQL, in-memory SQLite)."""
        if self.bundle_dir:
            return Path(self.bundle_dir)
        prefix = "sqlite:///"
        if self.database_url.startswith(prefix) and self.database_url[len(prefix):] not in ("", ":memory:"):
            return Path(self.database_url[len(prefix):].split("?", 1)[0]).parent / "bundles"
        return None

    @property
    def turn(self) -> TurnRest | None:
        """coturn's REST-API credentials, when turn_urls are configured."""
        if not self.turn_urls or self.turn_secret is None:
            return None
        return TurnRest(self.turn_urls, self.turn_secret, self.turn_credential_s)

    @classmethod
    def from_file(cls, path: Path) -> Config:
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"configuration file {path} does not exist; copy docs/central.example.toml "
                              "there and adjust it") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from None
        return cls.from_dict(raw, source=str(path))

    @classmethod
    def from_dict(cls, raw: dict[str, Any], source: str = "configuration") -> Config:
        known = {f.name for f in dataclasses.fields(cls)} - {"turn_secret"}
        if "turn_secret" in raw:
            raise ConfigError(f"{source}: the TURN secret does not belong in this file: write it into a file "
                              f"only central can read and name it as turn_secret_file, or set {TURN_SECRET_ENV}")
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ConfigError(f"{source}: unknown setting(s) {', '.join(unknown)}; known are {', '.join(sorted(known))}")
        if "database_url" not in raw:
            raise ConfigError(f"{source}: 'database_url' is missing, e.g. database_url = "
                              "\"sqlite:////var/lib/amtsklingel/central.db\"")
        values = dict(raw)
        try:
            values["ice_servers"] = tuple(IceServer.model_validate(s) for s in raw.get("ice_servers", []))
        except ValueError as exc:
            raise ConfigError(f"{source}: ice_servers: {exc}") from None
        for server in values["ice_servers"]:
            if any(u.startswith("turn") for u in server.urls) and not (server.username and server.credential):
                raise ConfigError(f"{source}: ice_servers: a TURN server ({server.urls[0]}) needs username and "
                                  "credential; browsers refuse it otherwise")
        values.update(_turn(raw, source))
        networks = raw.get("ice_networks", DEFAULT_NETWORKS)
        if not isinstance(networks, (list, tuple)):
            raise ConfigError(f"{source}: ice_networks must be a list of networks, e.g. [\"10.0.0.0/8\"]")
        try:
            parse_networks(networks)
        except ValueError as exc:
            raise ConfigError(f"{source}: ice_networks: {exc}") from None
        values["ice_networks"] = tuple(networks)
        for name, kind in (("port", int), ("bundle_max_mb", int), ("session_hours", (int, float)),
                           ("resume_grace_s", (int, float)), ("lease_stall_limit_s", (int, float)),
                           ("resume_token_hours", (int, float)), ("call_connect_timeout_s", (int, float)),
                           ("default_handling_s", int), ("secure_cookies", bool),
                           ("online_visits_per_department", int)):
            if name in values and (not isinstance(values[name], kind) or isinstance(values[name], bool) != (kind is bool)):
                raise ConfigError(f"{source}: '{name}' has the wrong type ({type(values[name]).__name__})")
        for name in ("resume_grace_s", "resume_token_hours", "call_connect_timeout_s", "lease_stall_limit_s"):
            if name in values and values[name] <= 0:
                raise ConfigError(f"{source}: '{name}' must be greater than 0")
        if values.get("online_visits_per_department", 0) < 0:
            raise ConfigError(f"{source}: 'online_visits_per_department' must be 0 (no visits from home) or more")
        if not values["database_url"].startswith(("sqlite", "postgresql")):
            raise ConfigError(f"{source}: database_url must start with sqlite:// or postgresql://")
        if values.get("public_url") is not None:
            values["public_url"] = _origin(values["public_url"], source)
        values["trusted_proxies"] = _networks(raw.get("trusted_proxies", []), source)
        if values.get("metrics_token") is not None:
            values["metrics_token"] = _metrics_token(values["metrics_token"], source)
        for name in ("update_keyring", "update_compatible", "bundle_dir"):
            if name in values and not (isinstance(values[name], str) and values[name].strip()):
                raise ConfigError(f"{source}: '{name}' must be text (a path or a name), not empty")
        if "bundle_max_mb" in values and values["bundle_max_mb"] < 1:
            raise ConfigError(f"{source}: 'bundle_max_mb' must be at least 1")
        if values.get("update_keyring") is not None:
            _keyring(Path(values["update_keyring"]), source)
        _smtp(values, source)
        _redis(values, source)
        return cls(**values)


def _smtp(values: dict[str, Any], source: str) -> None:
    host, sender = values.get("smtp_host"), values.get("smtp_from")
    if "smtp_port" in values and (not isinstance(values["smtp_port"], int) or isinstance(values["smtp_port"], bool)
                                  or not 0 < values["smtp_port"] < 65536):
        raise ConfigError(f"{source}: 'smtp_port' must be a port number, e.g. 25 or 587")
    if "smtp_starttls" in values and not isinstance(values["smtp_starttls"], bool):
        raise ConfigError(f"{source}: 'smtp_starttls' must be true or false")
    if host is not None and not (isinstance(host, str) and host.strip()):
        raise ConfigError(f"{source}: 'smtp_host' must be the city's mail server, e.g. \"mail.musterdorf.de\"")
    if (host is None) != (sender is None) or (sender is not None and not (
            isinstance(sender, str) and "@" in sender and "\n" not in sender and len(sender) <= 254)):
        raise ConfigError(f"{source}: smtp_host and smtp_from go together: smtp_from is the sender's address, "
                          "e.g. \"termine@musterdorf.de\"")


REDIS_URL_ENV = "AMTSKLINGEL_REDIS_URL"
REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


def _redis(values: dict[str, Any], source: str) -> None:
    """redis_url, from the environment when set there (it may hold the server's password)."""
    if os.environ.get(REDIS_URL_ENV, "").strip():
        values["redis_url"], source = os.environ[REDIS_URL_ENV].strip(), REDIS_URL_ENV
    url = values.get("redis_url")
    if url is None:
        return
    example = ("e.g. redis_url = \"redis://10.1.2.5:6379/0\" (Redis or Valkey, without persistence), or for Valkey "
               "under Sentinel \"redis+sentinel://:PASSWORD@10.1.2.5:26379,10.1.2.6:26379,10.1.2.7:26379/amtsklingel\"")
    if not isinstance(url, str) or not url.startswith(REDIS_SCHEMES + (SENTINEL_SCHEME, SENTINEL_TLS_SCHEME)):
        raise ConfigError(f"{source}: 'redis_url' must start with redis://, rediss://, unix://, "
                          f"{SENTINEL_SCHEME} or {SENTINEL_TLS_SCHEME} (TLS); {example}")
    try:  # the TLS files too: a missing or unreadable CA stops start-up here, not every connection later
        SentinelUrl.parse(url) if is_sentinel(url) else check_plain_url(url)
    except ValkeyUrlError as exc:
        raise ConfigError(f"{source}: redis_url: {exc}; "
                          f"{SENTINEL_EXAMPLE if is_sentinel(url) else TLS_EXAMPLE}") from None
    if not values["database_url"].startswith("postgresql"):
        raise ConfigError(f"{source}: redis_url is set for several centrals, and they must share one PostgreSQL "
                          "database: set database_url = \"postgresql://...\" (or remove redis_url for one central "
                          "with SQLite)")


TURN_SECRET_ENV = "AMTSKLINGEL_TURN_SECRET"
TURN_SECRET_MIN = 16
TURN_CREDENTIAL_MAX_S = 7 * 24 * 3600


def _turn(raw: dict[str, Any], source: str) -> dict[str, Any]:
    """turn_urls, the secret (file or environment) and the credentials' lifetime, checked together."""
    urls = raw.get("turn_urls", [])
    example = "e.g. turn_urls = [\"turn:turn.musterdorf.de:3478?transport=udp\", \"turns:turn.musterdorf.de:5349\"]"
    if not isinstance(urls, list) or not all(isinstance(u, str) and u.startswith(TURN_SCHEMES) and len(u) <= 200
                                             for u in urls):
        raise ConfigError(f"{source}: 'turn_urls' must be a list of turn: or turns: URLs; {example}")
    lifetime = raw.get("turn_credential_s", Config.turn_credential_s)
    if not isinstance(lifetime, (int, float)) or isinstance(lifetime, bool) or not 0 < lifetime <= TURN_CREDENTIAL_MAX_S:
        raise ConfigError(f"{source}: 'turn_credential_s' must be a number of seconds above 0 and at most "
                          f"{TURN_CREDENTIAL_MAX_S} (a week)")
    secret_file = raw.get("turn_secret_file")
    if secret_file is not None and not (isinstance(secret_file, str) and secret_file.strip()):
        raise ConfigError(f"{source}: 'turn_secret_file' must be the path of the file holding the TURN secret")
    if not urls:
        if secret_file is not None:
            raise ConfigError(f"{source}: turn_secret_file is set but turn_urls is not; {example}")
        return {"turn_urls": (), "turn_secret": None}
    hint = (f"the same text as static-auth-secret in coturn's turnserver.conf, at least {TURN_SECRET_MIN} "
            "characters, e.g. from  openssl rand -hex 32")
    if secret_file is not None:
        try:
            secret = Path(secret_file).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{source}: turn_secret_file {secret_file}: cannot be read "
                              f"({getattr(exc, 'strerror', None) or exc}); it holds {hint}") from None
        origin = f"turn_secret_file {secret_file}"
    else:
        secret = os.environ.get(TURN_SECRET_ENV, "").strip()
        origin = TURN_SECRET_ENV
        if not secret:
            raise ConfigError(f"{source}: turn_urls needs the secret shared with coturn: name a file holding it "
                              f"as turn_secret_file, or set {TURN_SECRET_ENV}; it is {hint}")
    if len(secret) < TURN_SECRET_MIN or any(ch.isspace() or not ch.isprintable() for ch in secret):
        raise ConfigError(f"{source}: the TURN secret in {origin} is too short or holds spaces; write {hint}")
    return {"turn_urls": tuple(urls), "turn_secret": TurnSecret(secret)}


def _origin(url: object, source: str) -> str:
    """``public_url`` as browsers send it in the Origin header: scheme://host[:port], lowercase,
    no default port, no trailing slash."""
    example = "e.g. public_url = \"https://buergerbuero.musterdorf.de\""
    if not isinstance(url, str):
        raise ConfigError(f"{source}: 'public_url' must be text, {example}")
    try:
        parts = urllib.parse.urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise ConfigError(f"{source}: public_url {url!r} is not a URL ({exc}); {example}") from None
    if parts.scheme.lower() not in ("https", "http") or not parts.hostname:
        raise ConfigError(f"{source}: public_url {url!r} must start with https:// (or http:// for a test) "
                          f"and name a host; {example}")
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username or parts.password:
        raise ConfigError(f"{source}: public_url {url!r} may name only scheme, host and port: central must be "
                          f"served at the root of its own host name (no path, query or user); {example}")
    scheme = parts.scheme.lower()
    try:
        host = parts.hostname.encode("idna").decode("ascii")  # browsers send the punycode form
    except UnicodeError:
        raise ConfigError(f"{source}: public_url {url!r}: the host name is not valid; {example}") from None
    if ":" in host:
        host = f"[{host}]"
    default_port = {"https": 443, "http": 80}[scheme]
    return f"{scheme}://{host}" + (f":{port}" if port is not None and port != default_port else "")


def _networks(value: object, source: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{source}: 'trusted_proxies' must be a list of addresses or networks, "
                          "e.g. trusted_proxies = [\"127.0.0.1\", \"::1\"]")
    try:
        return tuple(ipaddress.ip_network(v.strip(), strict=False) for v in value)
    except ValueError as exc:
        raise ConfigError(f"{source}: trusted_proxies: {exc}; write addresses such as \"10.1.2.3\" or "
                          "networks such as \"10.1.2.0/24\"") from None


def _keyring(path: Path, source: str) -> None:
    """The update keyring: readable, PEM certificates only (a private key does not belong on central)."""
    hint = ("update_keyring names the PEM file of the CA certificate(s) that sign update bundles, the same "
            "file as the image's --update-keyring (docs/updates.md)")
    try:
        text = path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{source}: update_keyring {path}: cannot be read ({exc}); {hint}") from None
    if "PRIVATE KEY" in text:
        raise ConfigError(f"{source}: update_keyring {path} holds a private key: give central only the "
                          f"certificates and keep the key off the server; {hint}")
    from cryptography import x509  # only when a keyring is configured
    try:
        certificates = x509.load_pem_x509_certificates(text.encode())
    except ValueError:
        certificates = []
    if not certificates:
        raise ConfigError(f"{source}: update_keyring {path} holds no PEM certificate; {hint}")
    if shutil.which("openssl") is None:
        raise ConfigError(f"{source}: update_keyring is set, but the openssl command that checks the bundles' "
                          "signatures is missing: install it (Debian: apt-get install openssl)")


METRICS_TOKEN_MIN = 32


def _metrics_token(value: object, source: str) -> str:
    hint = "e.g. the output of: python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"
    if not isinstance(value, str) or len(value) < METRICS_TOKEN_MIN:
        raise ConfigError(f"{source}: 'metrics_token' must be text of at least {METRICS_TOKEN_MIN} characters "
                          f"(Prometheus sends it as a bearer token); {hint}")
    if not all(33 <= ord(ch) <= 126 for ch in value) or len(value) > 512:
        raise ConfigError(f"{source}: 'metrics_token' may hold only visible ASCII characters (no spaces), "
                          f"at most 512; {hint}")
    return value
