"""The one place that turns ``redis_url`` into Valkey/Redis clients (docs/decisions/0008-several-centrals.md).

``redis_url`` names either one server (``redis://``, ``rediss://``, ``unix://``) or a Valkey run under Sentinel:

    redis+sentinel://[[user]:password@]host1:26379,host2:26379,host3:26379/SERVICE[/DB][?sentinel_password=...]

``rediss://`` and ``rediss+sentinel://`` speak TLS (to the sentinels and the data nodes alike), with the
``ssl_*`` options of central/cluster/valkey_tls.py.

SERVICE is the sentinels' name of the master (``sentinel monitor SERVICE ...``), the password is the data
nodes' (``requirepass``/``masterauth``), ``sentinel_password`` the sentinels' own (``requirepass`` in
sentinel.conf) where they have one. A sentinel-backed client asks the sentinels for the master before each new
connection, and redis-py drops a connection that hears READONLY (a demoted old master) or loses its server, so
the next command goes to whatever master the sentinels name then: a failover costs the commands in between,
which the callers already survive (they retry, or step down and restart as a standby).

Three kinds of client, as central needs them: from :func:`async_clients` the client with short timeouts (a leader
must notice a lost server within its lease) and the subscriber (no read timeout: a subscription waits as long as
no message comes, and it never reconnects on its own), and :func:`sync_client` for the lease keeper's thread
(central/cluster/keeper.py). :func:`follow_master` and :func:`follow_master_sync` move them off a master the
sentinels no longer name, even one that still answers.
"""
from __future__ import annotations

import logging
import re
import time
import urllib.parse
from dataclasses import dataclass, field

from central.cluster.valkey_tls import TLS_OPTIONS, ValkeyUrlError, connection_class, explain, explained, split_url
from central.cluster.valkey_tls import tls_kwargs as _tls_kwargs

log = logging.getLogger(__name__)

SCHEME = "redis+sentinel://"
TLS_SCHEME = "rediss+sentinel://"
SENTINEL_PORT = 26379
TIMEOUT_S = 1.0  # a leader must notice a lost server within its lease (3 s), not after TCP's minutes
QUIET_S = 30.0  # "no sentinel names a master" is logged at most this often per client
EXAMPLE = ("e.g. redis_url = \"redis+sentinel://:PASSWORD@10.20.0.7:26379,10.20.0.8:26379,10.20.0.9:26379/"
           "amtsklingel\"")


@dataclass(frozen=True)
class SentinelUrl:
    """A parsed ``redis+sentinel://`` or ``rediss+sentinel://`` URL; ``tls`` holds redis-py's TLS arguments for
    the sentinels and the data nodes alike (None: plain TCP)."""

    sentinels: tuple[tuple[str, int], ...]
    service: str
    db: int = 0
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    sentinel_password: str | None = field(default=None, repr=False)
    tls: dict | None = field(default=None, compare=False)

    @classmethod
    def parse(cls, url: str) -> SentinelUrl:
        if not is_sentinel(url):
            raise ValkeyUrlError(f"a URL of Valkey under Sentinel starts with {SCHEME} (or {TLS_SCHEME} for "
                                 f"TLS); {EXAMPLE}")
        scheme = TLS_SCHEME if url.startswith(TLS_SCHEME) else SCHEME
        rest, _, query = url[len(scheme):].partition("?")
        netloc, _, path = rest.partition("/")
        userinfo, at, hosts = netloc.rpartition("@")
        username = password = None
        if at:
            user, colon, secret = userinfo.partition(":")
            username = urllib.parse.unquote(user) or None
            password = urllib.parse.unquote(secret) if colon else None
            if password is None:
                raise ValkeyUrlError("write the data nodes' password after a colon (\":PASSWORD@\", or "
                                     "\"USER:PASSWORD@\" for an ACL user)")
        sentinels = tuple(_host_port(h) for h in hosts.split(",")) if hosts else ()
        if not sentinels:
            raise ValkeyUrlError("name the sentinels, host:port separated by commas (their port is usually 26379)")
        parts = [p for p in path.split("/") if p] if path else []
        if not parts or len(parts) > 2:
            raise ValkeyUrlError("after the sentinels comes /SERVICE, the master's name in sentinel.conf "
                                 "(\"sentinel monitor SERVICE ...\"), optionally followed by /DB")
        service = urllib.parse.unquote(parts[0])
        db = 0
        if len(parts) == 2:
            if not parts[1].isdigit():
                raise ValkeyUrlError(f"the database after /{service}/ must be a number such as 0, not {parts[1]!r}")
            db = int(parts[1])
        options = urllib.parse.parse_qs(query, keep_blank_values=True, strict_parsing=False)
        unknown = sorted(set(options) - {"sentinel_password", *TLS_OPTIONS})
        if unknown:
            raise ValkeyUrlError(f"unknown option(s) {', '.join(unknown)}; known are sentinel_password, the "
                                 "sentinels' own requirepass where they have one, and for TLS "
                                 f"{', '.join(TLS_OPTIONS[:4])}")
        sentinel_password = options.get("sentinel_password", [None])[-1] or None
        tls = _tls_kwargs(options, scheme == TLS_SCHEME, scheme) or None
        return cls(sentinels, service, db, username, password, sentinel_password, tls)

    def describe(self) -> str:
        """For the journal: no password."""
        return (f"service {self.service!r} of the sentinels "
                + ", ".join(f"{h}:{p}" for h, p in self.sentinels) + (" over TLS" if self.tls else ""))


def _host_port(text: str) -> tuple[str, int]:
    host, port = text.strip(), str(SENTINEL_PORT)
    if host.startswith("["):  # [IPv6]:port
        host, _, tail = host[1:].partition("]")
        if tail.startswith(":"):
            port = tail[1:]
    elif ":" in host:
        host, _, port = host.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValkeyUrlError(f"{text!r} is not host:port of a sentinel (their port is usually 26379)")
    return host, int(port)


def is_sentinel(url: str) -> bool:
    return url.startswith((SCHEME, TLS_SCHEME))


def describe(url: str) -> str:
    """Where the clients of ``url`` connect, without a password: for the journal."""
    if is_sentinel(url):
        return SentinelUrl.parse(url).describe()
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


class _MasterLog:
    """Says in the journal which master the sentinels named, when that changes, and when none did, with
    what to check. One per sentinel manager (not per process: each client says what it found)."""

    def __init__(self, target: SentinelUrl, who: str) -> None:
        self.target, self.who = target, who
        self.master: tuple[str, int] | None = None
        self._complained = 0.0

    def found(self, address) -> None:  # noqa: ANN001 - (host, port) as redis-py returns it
        master = (str(address[0]), int(address[1]))
        if master != self.master:
            (log.info if self.master is None else log.warning)(
                "%s: the sentinels name %s:%d as the Valkey master of %r%s", self.who, *master, self.target.service,
                "" if self.master is None else f" (it was {self.master[0]}:{self.master[1]}: a failover)")
            self.master = master

    def missing(self, exc: Exception) -> None:
        now = time.monotonic()
        if now - self._complained > QUIET_S:
            self._complained = now
            log.warning("%s: no sentinel names a Valkey master for %s (%s). During a failover this lasts a few "
                      "seconds; if it goes on, check that the sentinels run and are reachable from here, that they "
                      "monitor %r (sentinel monitor %s ...), that sentinel_password in redis_url is right, and "
                      "SENTINEL MASTERS on one of them", self.who, self.target.describe(), _briefly(exc),
                      self.target.service, self.target.service)


def _briefly(exc: Exception) -> str:
    """redis-py's "No master found for 'x' : <Redis(<ConnectionPool(<Connection(...)>)>)> - ConnectionError: ..."
    without the clients' reprs: the service and each sentinel's reason, or that they know no master that is up."""
    head, _, errors = str(exc).partition(" : ")
    reasons = [_explained(e.rpartition(" - ")[2]) for e in re.split(r", (?=<redis)", errors)] if errors else []
    return head + (": " + "; ".join(reasons) if reasons else ": the sentinels know no master that is up")


def _explained(reason: str) -> str:
    hint = explain(reason)
    return f"{reason.rstrip('.')}: {hint}" if hint else reason


def _sentinel_kwargs(target: SentinelUrl, timeout_s: float = TIMEOUT_S) -> dict:
    # Asking the sentinels needs short timeouts for every kind of client, the subscriber's included.
    kwargs = {"socket_timeout": timeout_s, "socket_connect_timeout": timeout_s}
    if target.sentinel_password:
        kwargs["password"] = target.sentinel_password
    if target.tls:  # the sentinels' own port is TLS too (tls-port in sentinel.conf): same CA, same client cert
        kwargs.update(ssl=True, **target.tls)
    return kwargs


CLIENT_NAME = "amtsklingel-central"  # CLIENT LIST on a Valkey node shows which connections are central's


def _node_kwargs(target: SentinelUrl, sync: bool) -> dict:
    kwargs = {"db": target.db, "username": target.username, "password": target.password, "client_name": CLIENT_NAME}
    if target.tls:
        if sync:
            from redis.sentinel import SentinelManagedSSLConnection
        else:
            from redis.asyncio.sentinel import SentinelManagedSSLConnection
        kwargs.update(connection_class=explained(SentinelManagedSSLConnection), **target.tls)
    return kwargs


def _async_sentinel(target: SentinelUrl, who: str):
    from redis.asyncio.sentinel import MasterNotFoundError, Sentinel

    watch = _MasterLog(target, who)

    class LoggedSentinel(Sentinel):
        async def discover_master(self, service_name: str):
            try:
                address = await super().discover_master(service_name)
            except MasterNotFoundError as exc:  # said briefly wherever it is logged (lease keeper, edge, …)
                watch.missing(exc)
                raise MasterNotFoundError(_briefly(exc)) from None
            watch.found(address)
            return address

    return LoggedSentinel(list(target.sentinels), sentinel_kwargs=_sentinel_kwargs(target))


def _no_retry():
    """A subscription must never reconnect on its own: redis-py would subscribe again on the new connection and
    the messages published meanwhile would be lost unnoticed. Its caller sees the error instead and treats the
    gap as one (the edge closes what it relayed, the leader ends the relayed sessions)."""
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff

    return Retry(NoBackoff(), 0)


def async_clients(url: str):
    """This central's client (short timeouts) and its subscriber (no read timeout), as a pair."""
    import redis.asyncio as aioredis

    if not is_sentinel(url):
        url, tls = split_url(url)
        tls.update(connection_class(url, sync=False))
        return (aioredis.from_url(url, socket_timeout=TIMEOUT_S, socket_connect_timeout=TIMEOUT_S, **tls),
                aioredis.from_url(url, socket_connect_timeout=TIMEOUT_S, retry=_no_retry(), **tls))
    target = SentinelUrl.parse(url)
    sentinel = _async_sentinel(target, "central")
    return (sentinel.master_for(target.service, socket_timeout=TIMEOUT_S, socket_connect_timeout=TIMEOUT_S,
                                **_node_kwargs(target, sync=False)),
            sentinel.master_for(target.service, socket_connect_timeout=TIMEOUT_S, retry=_no_retry(),
                                **_node_kwargs(target, sync=False)))


FOLLOW_EVERY_S = 0.5  # how soon central's connections leave a master the sentinels no longer name


async def follow_master(client, subscriber, every_s: float = FOLLOW_EVERY_S) -> None:  # noqa: ANN001
    """Ask the sentinels for the master every ``every_s`` and leave the old one at once when they name another.

    A connection that still works stays with its server: after a failover the sentinels chose (SENTINEL FAILOVER,
    or a master that was cut off and is reachable again) the old master goes on accepting writes until the
    sentinels turn it into a replica, 8 to 30 s later, and what was written there is lost. Nothing is lost when
    every connection of central moves within ``every_s`` of the switch. Runs until cancelled; for plain URLs it
    returns at once."""
    import asyncio

    from redis.exceptions import RedisError

    pools = [c.connection_pool for c in (client, subscriber)]
    if not all(hasattr(pool, "get_master_address") for pool in pools):
        return
    while True:
        await asyncio.sleep(every_s)
        for pool in pools:
            before = pool.master_address
            try:
                now = await pool.get_master_address()  # closes the idle connections to another master
            except RedisError:  # no sentinel answered: keep what works (logged by the pool's sentinel manager)
                continue
            if before is not None and now != before:
                await pool.disconnect(inuse_connections=True)  # the subscription, a command under way


def follow_master_sync(client) -> None:  # noqa: ANN001
    """The keeper thread's :func:`follow_master`, once per renewal: its idle connection leaves a master the
    sentinels no longer name. If no sentinel answers, the connection it has stays (the master may be fine)."""
    from redis.exceptions import RedisError

    pool = client.connection_pool
    if hasattr(pool, "get_master_address"):
        try:
            pool.get_master_address()
        except RedisError:
            pass


# The keeper asks the sentinels before every renewal (follow_master_sync): with every sentinel out of reach, three
# of these must still leave the renewal time inside the lease (renewed every 0.75 s, lost after 2.5 s).
KEEPER_SENTINEL_TIMEOUT_S = 0.25


def sync_client(url: str, timeout_s: float = TIMEOUT_S):
    """A blocking client for a thread of its own (the lease keeper)."""
    import redis

    if not is_sentinel(url):
        url, tls = split_url(url)
        tls.update(connection_class(url, sync=True))
        return redis.Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s, **tls)
    from redis.sentinel import MasterNotFoundError, Sentinel

    target = SentinelUrl.parse(url)
    watch = _MasterLog(target, "lease keeper")

    class LoggedSentinel(Sentinel):
        def discover_master(self, service_name: str):
            try:
                address = super().discover_master(service_name)
            except MasterNotFoundError as exc:  # said briefly wherever it is logged (lease keeper, edge, …)
                watch.missing(exc)
                raise MasterNotFoundError(_briefly(exc)) from None
            watch.found(address)
            return address

    sentinel = LoggedSentinel(list(target.sentinels),
                              sentinel_kwargs=_sentinel_kwargs(target, KEEPER_SENTINEL_TIMEOUT_S))
    return sentinel.master_for(target.service, socket_timeout=timeout_s, socket_connect_timeout=timeout_s,
                               **_node_kwargs(target, sync=True))


async def aclose(*clients) -> None:  # noqa: ANN002 - redis.asyncio clients
    """Close ``clients`` and, for sentinel-backed ones, their connections to the sentinels."""
    managers = {id(m): m for c in clients if (m := getattr(c.connection_pool, "sentinel_manager", None))}
    for client in clients:
        await client.aclose()
    for manager in managers.values():
        for sentinel in manager.sentinels:
            await sentinel.aclose()
