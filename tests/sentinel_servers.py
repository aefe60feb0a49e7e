"""Valkey under Sentinel for the test session: a master, its replica(s) and three sentinels on loopback.

start_sentinel_group() runs Debian's redis-server (7.0; ``redis-server sentinel.conf --sentinel`` is the
sentinel, Debian 12 has no separate redis-sentinel binary) as production would run Valkey for several
centrals (docs/deploy.md): no persistence, a password on the data nodes, three sentinels with a quorum of
two. One replica and ``min-replicas-to-write 0`` by default; docs/deploy.md's recommended layout is
``replicas=2, min_replicas_to_write=1`` (``min_replicas_max_lag`` 2, the default). The sentinels notice a dead master after DOWN_AFTER_MS, far shorter than production's, so a test sees a
whole failover in a few seconds. Every process has its own directory and log under one temporary directory,
every wait is bounded, and stop() ends them all and deletes it.

With ``certificates`` (tests/tls_servers.py) every node and sentinel speaks only TLS (docs/deploy.md "Valkey
over TLS"): ``port 0``, ``tls-port``, ``tls-replication yes`` (replicas to their master, sentinels to the nodes
and to each other) and ``tls-auth-clients yes``, so central needs its client certificate too.
"""
from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tests.servers import (
    REDIS_HINT,
    START_TIMEOUT_S,
    STOP_TIMEOUT_S,
    ServerUnavailable,
    _answers_ping,
    _free_port,
    _tail,
    _until_ready,
)
from tests.tls_servers import Certificates, answers_tls, tls_server_args

SERVICE = "amtsklingel"
PASSWORD = "valkey-test-password"  # the data nodes' requirepass/masterauth: the URL must carry it
DOWN_AFTER_MS = 1000  # production: several seconds (docs/deploy.md); here a failover fits a test
FAILOVER_TIMEOUT_MS = 5000
QUORUM = 2


@dataclass
class Instance:
    """One redis-server process (data node or sentinel) with its own directory, config and log."""

    name: str
    port: int
    base: Path
    args: list[str]
    process: subprocess.Popen | None = None

    @property
    def log(self) -> Path:
        return self.base / "server.log"

    def start(self, ready, timeout: float = START_TIMEOUT_S) -> None:  # noqa: ANN001 - a predicate
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(self.args, cwd=self.base, stdin=subprocess.DEVNULL, stdout=out,
                                            stderr=subprocess.STDOUT, start_new_session=True)
        error = _until_ready(self.process, ready, timeout, f"{self.name} on 127.0.0.1:{self.port}", self.log)
        if error is not None:
            raise ServerUnavailable(error)

    def kill(self) -> None:
        """SIGKILL: the machine is gone, nothing is said to anyone."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(STOP_TIMEOUT_S)

    def pause(self) -> None:
        """SIGSTOP: cut off as by a broken network, its connections open but silent."""
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)  # a paused one would not hear SIGTERM
            self.process.terminate()
            try:
                self.process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.kill()


@dataclass
class SentinelGroup:
    base: Path
    nodes: list[Instance]      # data nodes; nodes[0] is the first master
    sentinels: list[Instance]
    certificates: Certificates | None = None

    @property
    def tls(self) -> dict:
        """The helpers' own clients' TLS arguments (empty without TLS)."""
        return self.certificates.client_kwargs() if self.certificates else {}

    @property
    def url(self) -> str:
        """redis_url for central: the sentinels, the service, the data nodes' password (and the TLS files)."""
        hosts = ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)
        if self.certificates is None:
            return f"redis+sentinel://:{PASSWORD}@{hosts}/{SERVICE}/0"
        c = self.certificates
        return (f"rediss+sentinel://:{PASSWORD}@{hosts}/{SERVICE}/0?ssl_ca_certs={c.ca}&ssl_certfile={c.client}"
                f"&ssl_keyfile={c.client_key}")

    def node(self, port: int) -> Instance:
        return next(n for n in self.nodes if n.port == port)

    def master_port(self) -> int | None:
        """The master's port as the first sentinel that answers names it."""
        import redis

        for sentinel in self.sentinels:
            with contextlib.suppress(redis.RedisError), _client(sentinel.port, tls=self.tls) as client:
                address = client.sentinel_get_master_addr_by_name(SERVICE)
                if address:
                    return int(address[1])
        return None

    def sentinel_client(self, n: int = 0):
        return _client(self.sentinels[n].port, tls=self.tls, socket_timeout=2)

    def data_client(self, port: int):
        """A plain client of one data node (not through the sentinels)."""
        return _client(port, PASSWORD, tls=self.tls)

    def role(self, port: int) -> str | None:
        import redis

        with contextlib.suppress(redis.RedisError), self.data_client(port) as client:
            return client.info("replication")["role"]
        return None

    async def until_replica(self, port: int, seconds: float) -> None:
        """Waits until the sentinels have made the node on ``port`` (an old master back) a replica. A sentinel
        does nothing while in TILT mode, which a stall of its own timer over 2 s starts for 30 s (a machine
        that is very busy): the logs it fails with say ``+tilt`` then."""
        from tests.polling import until

        try:
            await until(lambda: self.role(port) == "slave", seconds, every=0.2,
                        what=f"127.0.0.1:{port} made a replica by the sentinels")
        except TimeoutError:
            raise AssertionError(f"127.0.0.1:{port} is no replica after {seconds} s (role "
                                 f"{self.role(port)}); the group's logs:\n{self.logs()}") from None

    def restart(self, node: Instance) -> None:
        """Start a killed data node again, as systemd would: with its own configuration, i.e. as the master
        it was (empty, nothing was saved) until the sentinels tell it otherwise."""
        node.start(lambda: _answers_auth(node.port, self.tls))

    def stop(self) -> None:
        try:
            for instance in [*self.sentinels, *self.nodes]:
                instance.stop()
        finally:
            shutil.rmtree(self.base, ignore_errors=True)

    def logs(self) -> str:
        return "\n".join(f"--- {i.name}:\n{_tail(i.log, 15)}" for i in [*self.nodes, *self.sentinels])


def _client(port: int, password: str | None = None, *, tls: dict, socket_timeout: float = 1):
    """A helper's own client of one process on 127.0.0.1 (the address the test certificate names)."""
    import redis

    return redis.Redis(host="127.0.0.1", port=port, password=password, socket_timeout=socket_timeout,
                       socket_connect_timeout=1, **tls)


def _answers_auth(port: int, tls: dict) -> bool:
    import redis

    try:
        with _client(port, PASSWORD, tls=tls) as client:
            return bool(client.ping())
    except redis.RedisError:
        return False


def _in_sync(port: int, tls: dict) -> bool:
    """A replica has loaded its master's data and follows its stream."""
    import redis

    try:
        with _client(port, PASSWORD, tls=tls) as client:
            return client.info("replication").get("master_link_status") == "up"
    except redis.RedisError:
        return False


def _sentinel_ready(port: int, replicas: int, sentinels: int, tls: dict) -> bool:
    """The sentinel knows the master, its replicas and the other sentinels: a failover can happen now."""
    import redis

    try:
        with _client(port, tls=tls) as client:
            state = client.sentinel_master(SERVICE)
    except redis.RedisError:
        return False
    return (state.get("num-slaves", 0) >= replicas and state.get("num-other-sentinels", 0) >= sentinels - 1
            and not state.get("is_sdown"))


def start_sentinel_group(replicas: int = 1, sentinels: int = 3, *, min_replicas_to_write: int = 0,
                         min_replicas_max_lag: int = 2, down_after_ms: int = DOWN_AFTER_MS,
                         certificates: Certificates | None = None, timeout: float = START_TIMEOUT_S) -> SentinelGroup:
    """A master, ``replicas`` replicas and ``sentinels`` sentinels, all on free loopback ports, ready to fail over.
    Every data node gets the same ``min-replicas-to-write``/``min-replicas-max-lag``, as in docs/deploy.md: the
    replica the sentinels promote must protect itself as the first master did."""
    binary = shutil.which("redis-server") or shutil.which("valkey-server")
    if binary is None:
        raise ServerUnavailable(f"redis-server not found; {REDIS_HINT}")
    base = Path(tempfile.mkdtemp(prefix="amtsklingel-sentinel-"))
    group = SentinelGroup(base, [], [], certificates)
    tls = group.tls

    def listen(port: int) -> list[str]:  # redis-server's arguments for its port: plain, or TLS only
        if certificates is None:
            return ["--port", str(port)]
        return [*tls_server_args(certificates, port, auth_clients="yes"), "--tls-replication", "yes"]
    try:
        master_port = None
        for n in range(1 + replicas):
            port = _free_port()
            home = base / f"node-{n}"
            home.mkdir()
            # No persistence (decision 0003); the same password for clients and replication, as in docs/deploy.md.
            args = [binary, *listen(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                    "--dir", str(home), "--daemonize", "no", "--requirepass", PASSWORD, "--masterauth", PASSWORD,
                    "--min-replicas-to-write", str(min_replicas_to_write),
                    "--min-replicas-max-lag", str(min_replicas_max_lag),
                    # A replica's first sync at once, not after the default 5 s of waiting for more replicas.
                    "--repl-diskless-sync-delay", "0"]
            if master_port is not None:
                args += ["--replicaof", "127.0.0.1", str(master_port)]
            node = Instance(f"valkey-{n}", port, home, args)
            group.nodes.append(node)
            node.start(lambda: _answers_auth(port, tls) and (master_port is None or _in_sync(port, tls)))  # noqa: B023
            master_port = master_port or port
        for n in range(sentinels):
            port = _free_port()
            home = base / f"sentinel-{n}"
            home.mkdir()
            conf = home / "sentinel.conf"  # a sentinel rewrites its file with what it learns: one each
            conf.write_text(_sentinel_listen(port, certificates) + f"bind 127.0.0.1\ndir {home}\n"
                            f"sentinel monitor {SERVICE} 127.0.0.1 {master_port} {QUORUM}\n"
                            f"sentinel auth-pass {SERVICE} {PASSWORD}\n"
                            f"sentinel down-after-milliseconds {SERVICE} {down_after_ms}\n"
                            f"sentinel failover-timeout {SERVICE} {FAILOVER_TIMEOUT_MS}\n"
                            f"sentinel parallel-syncs {SERVICE} 1\n")
            sentinel = Instance(f"sentinel-{n}", port, home, [binary, str(conf), "--sentinel"])
            group.sentinels.append(sentinel)
            sentinel.start(lambda: _answers_ping(port) if certificates is None else  # noqa: B023 - called here
                           answers_tls(port, certificates))  # noqa: B023
        for sentinel in group.sentinels:
            error = _until_ready(sentinel.process, lambda: _sentinel_ready(sentinel.port, replicas, sentinels, tls),  # noqa: B023
                                 timeout, f"{sentinel.name} knowing the master, replicas and sentinels", sentinel.log)
            if error is not None:
                raise ServerUnavailable(error)
        return group
    except BaseException:
        group.stop()
        raise


def _sentinel_listen(port: int, certificates: Certificates | None) -> str:
    """sentinel.conf's lines for its port: as docs/deploy.md has them for TLS."""
    if certificates is None:
        return f"port {port}\n"
    return (f"port 0\ntls-port {port}\ntls-cert-file {certificates.server}\ntls-key-file {certificates.server_key}\n"
            f"tls-ca-cert-file {certificates.ca}\ntls-auth-clients yes\ntls-replication yes\n")


@contextlib.contextmanager
def sentinel_group(replicas: int = 1, **kwargs):
    """``with sentinel_group() as group:`` running, stopped and deleted afterwards."""
    group = start_sentinel_group(replicas, **kwargs)
    try:
        yield group
    finally:
        group.stop()
