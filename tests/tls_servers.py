"""Valkey with TLS for the test session: a throwaway CA, certificates, and a redis-server that speaks only TLS.

make_certificates() writes, with Debian's openssl command (listed in build.sh's SYSTEM_PACKAGES), what a city's
IT would issue (docs/deploy.md "Valkey over TLS"): a CA, a server certificate for 127.0.0.1 (an IP address only,
as the sentinels announce data nodes by address; "localhost" is deliberately not in it, so a test can name a
host the certificate does not), a client certificate from the same CA, and a second CA that signed none of them.
EC keys: each certificate takes milliseconds.

start_tls_redis() runs redis-server with ``--port 0 --tls-port N``: nothing answers in plain text, as on a
machine whose Valkey is reached from other machines. ``tls-auth-clients optional`` by default; a test can
demand client certificates with CONFIG SET.
"""
from __future__ import annotations

import contextlib
import shutil
import socket
import ssl
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tests.servers import (
    REDIS_HINT,
    START_TIMEOUT_S,
    ServerUnavailable,
    _Foreground,
    _free_port,
    _until_ready,
)

OPENSSL_HINT = "run ./build.sh test, which installs Debian's openssl package (listed in SYSTEM_PACKAGES)"
PASSWORD = "valkey-tls-test-password"


@dataclass(frozen=True)
class Certificates:
    """PEM files in ``base``: ca.pem (the CA that signed server and client), other-ca.pem (a CA that signed
    nothing here), server.pem/server.key (for IP 127.0.0.1 only), client.pem/client.key."""

    base: Path

    def __getattr__(self, name: str) -> Path:  # certificates.ca, .other_ca, .server_key, …
        return self.base / {"ca": "ca.pem", "other_ca": "other-ca.pem", "server": "server.pem",
                            "server_key": "server.key", "client": "client.pem", "client_key": "client.key"}[name]

    def client_kwargs(self) -> dict:
        """redis-py's arguments for a helper's own client (readiness checks, direct looks at a node)."""
        return {"ssl": True, "ssl_ca_certs": str(self.ca), "ssl_certfile": str(self.client),
                "ssl_keyfile": str(self.client_key)}


def _openssl(*args: str, cwd: Path) -> None:
    done = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        raise ServerUnavailable(f"openssl {' '.join(args[:2])} failed:\n{done.stderr}")


def make_certificates(base: Path) -> Certificates:
    if shutil.which("openssl") is None:
        raise ServerUnavailable(f"openssl not found; {OPENSSL_HINT}")
    base.mkdir(parents=True, exist_ok=True)
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    for ca in ("ca", "other-ca"):
        _openssl("req", "-x509", *ec, "-keyout", f"{ca}.key", "-out", f"{ca}.pem", "-days", "2",
                 "-subj", f"/CN=Amtsklingel test {ca}", cwd=base)
    # Valkey presents its certificate as a client too (a replica to its master, a sentinel to the nodes), so
    # the server certificate is meant for both, as docs/deploy.md asks of the nodes' certificates.
    for name, extension in (("server", "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth"),
                            ("client", "extendedKeyUsage=clientAuth")):
        (base / f"{name}.ext").write_text(extension + "\n")
        _openssl("req", "-new", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj",
                 f"/CN=amtsklingel-{name}", cwd=base)
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                 "-days", "2", "-extfile", f"{name}.ext", "-out", f"{name}.pem", cwd=base)
    return Certificates(base)


def tls_server_args(certificates: Certificates, port: int, auth_clients: str = "optional") -> list[str]:
    """redis-server's TLS arguments, as docs/deploy.md has them in valkey.conf: TLS only (port 0)."""
    return ["--port", "0", "--tls-port", str(port), "--tls-cert-file", str(certificates.server),
            "--tls-key-file", str(certificates.server_key), "--tls-ca-cert-file", str(certificates.ca),
            "--tls-auth-clients", auth_clients]


def answers_tls(port: int, certificates: Certificates, password: str | None = None) -> bool:
    """The server completes a verified TLS handshake on 127.0.0.1:port and answers PING (or AUTH)."""
    context = ssl.create_default_context(cafile=str(certificates.ca))
    context.load_cert_chain(str(certificates.client), str(certificates.client_key))
    command = f"AUTH {password}\r\n" if password else "PING\r\n"
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as raw, \
                context.wrap_socket(raw, server_hostname="127.0.0.1") as s:
            s.sendall(command.encode())
            return s.recv(16).startswith((b"+PONG", b"+OK"))
    except OSError:
        return False


@dataclass
class TlsRedis(_Foreground):
    """redis-server on 127.0.0.1:port with TLS only and requirepass PASSWORD."""

    certificates: Certificates | None = None

    def url(self, host: str = "127.0.0.1", **options: str) -> str:
        query = "&".join(f"{k}={v}" for k, v in {"ssl_ca_certs": self.certificates.ca, **options}.items() if v)
        return f"rediss://:{PASSWORD}@{host}:{self.port}/0" + (f"?{query}" if query else "")

    def admin(self):
        """A client of the test's own (with the client certificate), for CONFIG SET and looks."""
        import redis

        return redis.Redis(host="127.0.0.1", port=self.port, password=PASSWORD, socket_timeout=2, socket_connect_timeout=2,
                           **self.certificates.client_kwargs())


def start_tls_redis(certificates: Certificates, timeout: float = START_TIMEOUT_S) -> TlsRedis:
    binary = shutil.which("redis-server") or shutil.which("valkey-server")
    if binary is None:
        raise ServerUnavailable(f"redis-server not found; {REDIS_HINT}")
    base = Path(tempfile.mkdtemp(prefix="amtsklingel-redis-tls-"))
    log = base / "redis.log"
    try:
        port = _free_port()
        with log.open("ab") as out:
            process = subprocess.Popen(
                [binary, *tls_server_args(certificates, port), "--bind", "127.0.0.1", "--save", "",
                 "--appendonly", "no", "--dir", str(base), "--daemonize", "no", "--requirepass", PASSWORD],
                cwd=base, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        error = _until_ready(process, lambda: answers_tls(port, certificates, PASSWORD), timeout,
                             f"redis-server with TLS on 127.0.0.1:{port}", log)
        if error is not None:
            raise ServerUnavailable(f"redis-server with TLS failed to start: {error}")
        return TlsRedis(base, port, process, certificates=certificates)
    except BaseException:
        shutil.rmtree(base, ignore_errors=True)
        raise


@contextlib.contextmanager
def tls_redis_server(certificates: Certificates):
    server = start_tls_redis(certificates)
    try:
        yield server
    finally:
        server.stop()
