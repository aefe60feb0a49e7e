"""Throwaway database servers for the test session: PostgreSQL, and Redis for several centrals.

start_postgresql() runs a private PostgreSQL cluster: initdb into a fresh temporary
directory, trust authentication for 127.0.0.1 only (plus a unix socket inside that
directory), fsync off. stop() shuts it down and deletes the directory. Nothing here
touches a system-wide cluster, and nothing listens beyond loopback.

initdb and postgres refuse to run as root, so as root both run as the ``postgres``
system user (``nobody`` when there is none) through setpriv.

start_haproxy() puts Debian's HAProxy on 127.0.0.1 in front of several centrals: pages and the rest to the
one whose /health/leader answers 200, the WebSockets of kiosks, consoles, guests and visitors from home round
robin over all whose /health/ws answers 200 (the leader and the edges that relay to it; docs/deploy.md has
the production form).

start_redis() runs Debian's redis-server (7.0 on Debian 12; trixie's valkey-server speaks the
same protocol) on 127.0.0.1 without any persistence, as production must run it
(docs/decisions/0008-several-centrals.md): visits never land on disk.
"""
from __future__ import annotations

import contextlib
import glob
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
INSTALL_HINT = "run ./build.sh test, which installs Debian's postgresql package (listed in SYSTEM_PACKAGES)"
REDIS_HINT = "run ./build.sh test, which installs Debian's redis-server package (listed in SYSTEM_PACKAGES)"


class ServerUnavailable(RuntimeError):
    """The server could not be started; the message says why and what to do."""


def _pg_bindir() -> Path:
    """Directory holding initdb and postgres: Debian's newest /usr/lib/postgresql/N/bin, else PATH."""
    def version(path: str) -> tuple[int, ...]:
        name = Path(path).parent.parent.name
        return tuple(int(p) for p in name.split(".") if p.isdigit())

    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=version, reverse=True)
    if not candidates and (initdb := shutil.which("initdb")):
        candidates = [initdb]
    for initdb in candidates:
        bindir = Path(initdb).parent
        if all(os.access(bindir / tool, os.X_OK) for tool in ("initdb", "postgres", "pg_isready")):
            return bindir
    raise ServerUnavailable(f"PostgreSQL server binaries (initdb, postgres, pg_isready) not found; {INSTALL_HINT}")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_user_prefix() -> tuple[list[str], pwd.struct_passwd | None]:
    """Command prefix that drops root to an unprivileged account (empty when not root)."""
    if os.geteuid() != 0:
        return [], None
    for name in ("postgres", "nobody"):
        try:
            user = pwd.getpwnam(name)
        except KeyError:
            continue
        if shutil.which("setpriv"):
            # setpriv execs postgres itself (runuser would stay in between and not pass signals on),
            # and --pdeathsig gets it a SIGTERM if the test process dies without cleaning up.
            return ["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--init-groups",
                    "--pdeathsig=TERM", "--"], user
        raise ServerUnavailable("running as root, but setpriv (util-linux) is missing to start PostgreSQL "
                                "as an unprivileged user; run ./build.sh test, which installs util-linux")
    raise ServerUnavailable("running as root and there is no 'postgres' or 'nobody' user to run PostgreSQL as")


def _tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@dataclass
class PostgreSQL:
    """A running throwaway server. Superuser ``postgres``, no password, on 127.0.0.1:port."""

    base: Path
    port: int
    process: subprocess.Popen
    startup_s: float
    host: str = "127.0.0.1"
    user: str = "postgres"
    databases: list[str] = field(default_factory=list)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{self.user}@{self.host}:{self.port}/{database}"

    async def create_database(self, name: str | None = None) -> str:
        """CREATE DATABASE (a fresh random name unless given); returns its postgresql:// URL."""
        import asyncpg

        name = name or f"test_{secrets.token_hex(6)}"
        conn = await asyncpg.connect(host=self.host, port=self.port, user=self.user, database="postgres",
                                     timeout=START_TIMEOUT_S)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        self.databases.append(name)
        return self.url(name)

    async def drop_database(self, name: str) -> None:
        import asyncpg

        conn = await asyncpg.connect(host=self.host, port=self.port, user=self.user, database="postgres",
                                     timeout=START_TIMEOUT_S)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    def stop(self) -> None:
        """Fast shutdown (SIGINT), SIGKILL if that takes too long; then delete everything."""
        try:
            if self.process.poll() is None:
                self.process.send_signal(signal.SIGINT)
                try:
                    self.process.wait(STOP_TIMEOUT_S)
                except subprocess.TimeoutExpired:
                    self.kill()
        finally:
            shutil.rmtree(self.base, ignore_errors=True)

    def kill(self) -> None:
        """SIGKILL the server's whole process group (it runs in a session of its own)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(STOP_TIMEOUT_S)


def start_postgresql(timeout: float = START_TIMEOUT_S) -> PostgreSQL:
    """Start a fresh PostgreSQL server; raises ServerUnavailable with the reason (and log) on failure."""
    started = time.monotonic()
    bindir = _pg_bindir()
    prefix, user = _as_user_prefix()
    base = Path(tempfile.mkdtemp(prefix="amtsklingel-pg-"))
    try:
        data, sockets, log = base / "data", base / "socket", base / "postgres.log"
        sockets.mkdir()
        log.touch()
        if user is not None:
            for path in (base, sockets, log):
                os.chown(path, user.pw_uid, user.pw_gid)
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "LANG": "C",
               "HOME": str(base), "TZ": "UTC"}
        # --no-locale: a deterministic "C" collation whatever locales the machine has.
        initdb = subprocess.run(
            [*prefix, str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust",
             "-E", "UTF8", "--no-locale", "--no-sync"],
            cwd=base, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout)
        if initdb.returncode != 0:
            raise ServerUnavailable(f"initdb failed (exit {initdb.returncode}):\n{initdb.stdout}{initdb.stderr}")
        # Replace the generated rules: trust the local socket and 127.0.0.1, nothing else.
        (data / "pg_hba.conf").write_text("local all all trust\nhost all all 127.0.0.1/32 trust\n")
        last_error = ""
        for _attempt in range(3):  # the free port can be taken between probing and binding
            port = _free_port()
            with log.open("ab") as out:
                process = subprocess.Popen(
                    [*prefix, str(bindir / "postgres"), "-D", str(data), "-p", str(port),
                     "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={sockets}",
                     "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
                     "-c", "max_connections=200", "-c", "shared_buffers=32MB", "-c", "logging_collector=off"],
                    cwd=base, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                    start_new_session=True)
            server = PostgreSQL(base, port, process, startup_s=0.0)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if process.poll() is not None:
                    last_error = f"postgres exited with code {process.returncode}:\n{_tail(log)}"
                    break
                ready = subprocess.run([str(bindir / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(port),
                                        "-U", "postgres", "-d", "postgres", "-t", "1"],
                                       env=env, stdin=subprocess.DEVNULL, capture_output=True)
                if ready.returncode == 0:
                    server.startup_s = time.monotonic() - started
                    return server
                time.sleep(0.05)
            else:
                server.kill()
                raise ServerUnavailable(f"PostgreSQL did not accept connections on 127.0.0.1:{port} within "
                                        f"{timeout:.0f} s; its log:\n{_tail(log)}")
            if "Address already in use" not in last_error:
                break
        raise ServerUnavailable(f"PostgreSQL failed to start: {last_error}")
    except BaseException:
        shutil.rmtree(base, ignore_errors=True)
        raise


@contextlib.contextmanager
def postgresql(timeout: float = START_TIMEOUT_S):
    """``with postgresql() as server:`` a running server, stopped and deleted afterwards."""
    server = start_postgresql(timeout)
    try:
        yield server
    finally:
        server.stop()


@dataclass
class _Foreground:
    """A server process of the test's own, in the foreground, with its files in ``base``."""

    base: Path
    port: int
    process: subprocess.Popen
    host: str = "127.0.0.1"

    def stop(self) -> None:
        """SIGTERM, SIGKILL if that takes too long; then delete its files."""
        try:
            if self.process.poll() is None:
                self.process.terminate()
                try:
                    self.process.wait(STOP_TIMEOUT_S)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait(STOP_TIMEOUT_S)
        finally:
            shutil.rmtree(self.base, ignore_errors=True)


def _until_ready(process: subprocess.Popen, ready, timeout: float, what: str, log: Path) -> str | None:  # noqa: ANN001
    """Wait until ``ready()``: None then, or why the process exited. Raises ServerUnavailable (after
    killing it) when it neither got ready nor exited within ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return f"{what} exited with code {process.returncode}:\n{_tail(log)}"
        if ready():
            return None
        time.sleep(0.05)
    process.kill()
    process.wait(STOP_TIMEOUT_S)
    raise ServerUnavailable(f"{what} did not answer within {timeout:.0f} s; its log:\n{_tail(log)}")


@dataclass
class Redis(_Foreground):
    """A running throwaway redis-server on 127.0.0.1:port, no password, nothing saved."""

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"


def _listens(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def _answers_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def start_redis(timeout: float = START_TIMEOUT_S) -> Redis:
    """Start a fresh redis-server (or valkey-server where only that is installed); raises
    ServerUnavailable with the reason (and log) on failure."""
    binary = shutil.which("redis-server") or shutil.which("valkey-server")
    if binary is None:
        raise ServerUnavailable(f"redis-server not found; {REDIS_HINT}")
    base = Path(tempfile.mkdtemp(prefix="amtsklingel-redis-"))
    log = base / "redis.log"
    last_error = ""
    try:
        for _attempt in range(3):  # the free port can be taken between probing and binding
            port = _free_port()
            with log.open("ab") as out:
                # No RDB snapshots, no append-only file: the server keeps visits in memory only.
                process = subprocess.Popen(
                    [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                     "--dir", str(base), "--daemonize", "no", "--protected-mode", "yes"],
                    cwd=base, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                    start_new_session=True)
            last_error = _until_ready(process, lambda: _answers_ping(port), timeout,  # noqa: B023 - called here
                                      f"redis-server on 127.0.0.1:{port}", log)
            if last_error is None:
                return Redis(base, port, process)
            if "Address already in use" not in last_error:
                break
        raise ServerUnavailable(f"redis-server failed to start: {last_error}")
    except BaseException:
        shutil.rmtree(base, ignore_errors=True)
        raise


@contextlib.contextmanager
def redis_server(timeout: float = START_TIMEOUT_S):
    """``with redis_server() as server:`` a running server, stopped and deleted afterwards."""
    server = start_redis(timeout)
    try:
        yield server
    finally:
        server.stop()


HAPROXY_HINT = "run ./build.sh test, which installs Debian's haproxy package (listed in SYSTEM_PACKAGES)"


def haproxy_config(port: int, backends: list[tuple[str, int]], admin_socket: Path, maxconn: int = 4000) -> str:
    """The test's HAProxy: plain HTTP on loopback; health checks and timeouts as in docs/deploy.md."""
    servers = "\n".join(f"    server {name} 127.0.0.1:{p} check" for name, p in backends)
    return f"""global
    maxconn {maxconn}  # two file descriptors each; a test machine allows a few thousand
    stats socket {admin_socket} mode 600 level user

defaults
    mode http
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    # A kiosk's or console's WebSocket lives all day: once upgraded, only this applies.
    timeout tunnel 8h
    timeout client-fin 5s
    # A central that is gone (connection refused): try the request on another server.
    retries 3
    option redispatch 1
    # Without it a check may take only "inter" (250 ms): a leader busy with a wave of reconnects would be
    # marked down, and its sessions cut. Two checks timing out (fall 2) take 6 s, longer than central's
    # lease_stall_limit_s (5 s): a leader that still holds its lease keeps its sessions. A killed central
    # refuses the connection at once all the same.
    timeout check 3s
    # Checked every 250 ms, down after 2 failures, up after 1 success; sessions to a server marked down are
    # cut, so no client keeps talking to a central that stopped leading (or relaying to the leader).
    default-server inter 250ms fastinter 250ms downinter 250ms fall 2 rise 1 on-marked-down shutdown-sessions

frontend central
    bind 127.0.0.1:{port}
    # The sockets of kiosks, consoles, guests and visitors from home: any central takes them (an edge relays
    # them to the leader). Everything else (pages, enrolment of new units) reads the leader's memory.
    acl relayed_socket path /ws/kiosk /ws/staff /ws/guest /ws/visit
    use_backend sockets if relayed_socket
    default_backend centrals

backend centrals
    # Only the leader answers 200; standbys answer 503 and get no traffic.
    option httpchk GET /health/leader
    http-check expect status 200
{servers}

backend sockets
    # The leader and every edge that relays to it answer 200; a central that cannot (nobody leads, or it has
    # lost Valkey) answers 503 until it can.
    balance roundrobin
    option httpchk GET /health/ws
    http-check expect status 200
{servers}
"""


@dataclass
class HAProxy(_Foreground):

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def servers_up(self, backend: str = "centrals") -> set[str]:
        """The servers of ``backend`` HAProxy sends traffic to now (its ``show stat`` on the admin socket)."""
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(2)
            s.connect(str(self.base / "admin.sock"))
            s.sendall(b"show stat\n")
            data = b""
            while chunk := s.recv(65536):
                data += chunk
        lines = data.decode().splitlines()
        header = lines[0].lstrip("# ").split(",")
        proxy, name, status = header.index("pxname"), header.index("svname"), header.index("status")
        return {row[name] for row in (line.split(",") for line in lines[1:] if line)
                if row[proxy] == backend and row[name] not in ("FRONTEND", "BACKEND") and row[status].startswith("UP")}


def start_haproxy(backends: list[tuple[str, int]], timeout: float = START_TIMEOUT_S, maxconn: int = 4000) -> HAProxy:
    """HAProxy in the foreground on a free loopback port in front of ``backends`` (name, port), taking at most
    ``maxconn`` client connections (the scale benchmark's thousands need their file descriptors twice)."""
    binary = shutil.which("haproxy") or ("/usr/sbin/haproxy" if os.access("/usr/sbin/haproxy", os.X_OK) else None)
    if binary is None:
        raise ServerUnavailable(f"haproxy not found; {HAPROXY_HINT}")
    base = Path(tempfile.mkdtemp(prefix="amtsklingel-haproxy-"))
    log = base / "haproxy.log"
    try:
        port = _free_port()
        config = base / "haproxy.cfg"
        config.write_text(haproxy_config(port, backends, base / "admin.sock", maxconn))
        check = subprocess.run([binary, "-c", "-f", str(config)], capture_output=True, text=True, timeout=timeout)
        if check.returncode != 0:
            raise ServerUnavailable(f"haproxy refused its configuration:\n{check.stdout}{check.stderr}")
        with log.open("ab") as out:
            process = subprocess.Popen([binary, "-db", "-f", str(config)], cwd=base, stdin=subprocess.DEVNULL,
                                       stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        exited = _until_ready(process, lambda: _listens(port), timeout, f"haproxy on 127.0.0.1:{port}", log)
        if exited is not None:
            raise ServerUnavailable(exited)
        return HAProxy(base, port, process)
    except BaseException:
        shutil.rmtree(base, ignore_errors=True)
        raise
