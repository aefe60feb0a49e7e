"""TLS to Valkey: the options of ``redis_url``, checked at start-up, and what a failed handshake means.

Valkey runs on other machines than central, and a city's IT must encrypt connections that leave a machine
(BSI IT-Grundschutz). ``rediss://`` (one server) and ``rediss+sentinel://`` (sentinels and data nodes alike) speak
TLS, always verifying Valkey's certificate and its host name; these query options say against what:

    ssl_ca_certs=/etc/amtsklingel/valkey-ca.pem    the CA (PEM) that signed Valkey's certificates; without it the
                                                   machine's trusted CAs (/etc/ssl/certs) are used
    ssl_certfile=...pem&ssl_keyfile=...key         central's client certificate, where Valkey demands one
                                                   (tls-auth-clients yes)
    ssl_check_hostname=false                       only where the certificates cannot name the hosts

The files are read at start-up (as central's user): a missing, unreadable or wrong file stops central with what
to fix, instead of every connection failing later. A handshake that fails says why in words an admin can act on
(:func:`explain`), wherever the error is logged.
"""
from __future__ import annotations

import functools
import ssl
import urllib.parse

from protocol.errors import AmtsklingelError

# What central accepts; ssl_cert_reqs only as "required" (the default): switching verification off would make
# TLS worthless against the attacker it is there for, so that is refused rather than offered.
TLS_OPTIONS = ("ssl_ca_certs", "ssl_certfile", "ssl_keyfile", "ssl_check_hostname", "ssl_cert_reqs")
TRUE, FALSE = ("true", "yes", "1", "on"), ("false", "no", "0", "off")
TLS_EXAMPLE = ("e.g. redis_url = \"rediss://:PASSWORD@10.20.0.7:6379/0?ssl_ca_certs=/etc/amtsklingel/"
               "valkey-ca.pem\"")


class ValkeyUrlError(AmtsklingelError, ValueError):
    """A ``redis_url`` that cannot be used as written; the text says what to write."""


def tls_kwargs(options: dict[str, list[str]], tls: bool, scheme: str) -> dict:
    """redis-py's TLS arguments from the URL's ``ssl_*`` options, the files checked; empty without TLS.

    Hostname checking is asked for explicitly: redis-py before 6.0 left it off by default."""
    given = {name: values[-1] for name, values in options.items() if name in TLS_OPTIONS}
    if not tls:
        if given:
            raise ValkeyUrlError(f"{', '.join(sorted(given))} need TLS: write {scheme.replace('redis', 'rediss', 1)} "
                                 f"instead of {scheme}")
        return {}
    reqs = given.pop("ssl_cert_reqs", "required").lower()
    if reqs != "required":
        raise ValkeyUrlError(f"ssl_cert_reqs={reqs} is refused: central always verifies Valkey's certificate; name "
                             "the CA that signed it with ssl_ca_certs")
    kwargs: dict = {"ssl_cert_reqs": "required", "ssl_check_hostname": True}
    check = given.pop("ssl_check_hostname", "true").lower()
    if check not in TRUE + FALSE:
        raise ValkeyUrlError(f"ssl_check_hostname must be true or false, not {check!r}")
    kwargs["ssl_check_hostname"] = check in TRUE
    if ca := given.get("ssl_ca_certs"):
        _check_ca(ca)
        kwargs["ssl_ca_certs"] = ca
    certfile, keyfile = given.get("ssl_certfile"), given.get("ssl_keyfile")
    if keyfile and not certfile:
        raise ValkeyUrlError("ssl_keyfile goes with ssl_certfile, central's client certificate (PEM)")
    if certfile:
        _check_client_certificate(certfile, keyfile)
        kwargs["ssl_certfile"] = certfile
        if keyfile:
            kwargs["ssl_keyfile"] = keyfile
    return kwargs


class UnreadableFile(ValkeyUrlError):
    """A certificate or key file named in ``redis_url`` that central's user cannot read."""

    def __init__(self, path: str, exc: OSError, what: str) -> None:
        super().__init__(f"{path} ({what}) cannot be read: {exc.strerror or exc}; central's service user "
                         "(amtsklingel) must be able to read it (docs/deploy.md \"Valkey over TLS\")")


def _check_ca(path: str) -> None:
    try:
        ssl.create_default_context(cafile=path)
    except OSError as exc:
        if isinstance(exc, ssl.SSLError):  # read, but no certificate in it
            raise ValkeyUrlError(f"ssl_ca_certs {path} holds no PEM certificate: it must be the CA certificate "
                                 "that signed Valkey's (the file Valkey has as tls-ca-cert-file)") from None
        raise UnreadableFile(path, exc, "ssl_ca_certs") from None


def _no_passphrase() -> bytes:
    # Without this OpenSSL would ask on the terminal for the passphrase of an encrypted key: at start-up under
    # systemd nobody answers. An empty one fails at once, and the message says what to do.
    return b""


def _check_client_certificate(certfile: str, keyfile: str | None) -> None:
    for path, what in ((certfile, "ssl_certfile"), (keyfile, "ssl_keyfile")):
        if path:
            try:
                with open(path, "rb"):
                    pass
            except OSError as exc:
                raise UnreadableFile(path, exc, what) from None
    try:
        ssl.create_default_context().load_cert_chain(certfile, keyfile, password=_no_passphrase)
    except ssl.SSLError:
        raise ValkeyUrlError(f"ssl_certfile {certfile} and ssl_keyfile {keyfile or '(none)'} do not make a "
                             "client certificate: the first must be central's certificate (PEM), the second its "
                             "unencrypted private key (PEM)") from None


# What OpenSSL says, and what the admin should check. Matched in the error's text, since that is what redis-py
# keeps of the ssl module's exception (and the sentinels' errors reach central only as text).
_HINTS = (
    (("self-signed certificate", "self signed certificate", "unable to get local issuer certificate",
      "unable to verify the first certificate"),
     "Valkey's certificate is not signed by the CA central trusts: ssl_ca_certs in redis_url must name the CA "
     "certificate that signed it (the file Valkey has as tls-ca-cert-file)"),
    (("Hostname mismatch", "IP address mismatch"),
     "Valkey's certificate does not name the host in redis_url: its subjectAltName must hold that name or "
     "address (with Sentinel, the addresses the sentinels announce)"),
    (("certificate has expired",), "Valkey's certificate has expired: renew it"),
    (("certificate is not yet valid",), "Valkey's certificate is not valid yet: check the clocks"),
    (("alert certificate required", "alert bad certificate", "alert unknown ca", "alert unsupported certificate"),
     "Valkey refused central's client certificate: ssl_certfile must be signed by the CA in Valkey's "
     "tls-ca-cert-file and be meant for clients"),
)


def explain(text: str) -> str | None:
    """What a TLS failure described by ``text`` means for the admin, or None when it is not one of those."""
    for needles, hint in _HINTS:
        if any(n.lower() in text.lower() for n in needles):
            return hint
    return None


@functools.cache
def explained(cls: type) -> type:
    """``cls`` (a redis-py connection class) whose connection errors end with :func:`explain`'s hint."""

    def _error_message(self, exception) -> str:  # noqa: ANN001 - as redis-py calls it
        text = super(new, self)._error_message(exception)
        hint = explain(str(exception))
        return f"{text.rstrip('.')}: {hint}" if hint else text

    new = type(f"Explained{cls.__name__}", (cls,), {"_error_message": _error_message})
    return new


def split_url(url: str) -> tuple[str, dict]:
    """A ``redis://``, ``rediss://`` or ``unix://`` URL without its ``ssl_*`` options, and redis-py's arguments
    for them. Central passes what it checked itself rather than let redis-py read the options: older redis-py
    versions had no hostname check by default, and a file checked at start-up is the file used."""
    scheme = url.partition("://")[0] + "://"
    base, _, query = url.partition("?")  # only the query is rewritten: urlunsplit would drop unix://'s "//"
    kwargs = tls_kwargs(urllib.parse.parse_qs(query, keep_blank_values=True), scheme == "rediss://", scheme)
    pairs = urllib.parse.parse_qsl(query, keep_blank_values=True)
    if not any(k in TLS_OPTIONS for k, _ in pairs):
        return url, kwargs
    rest = urllib.parse.urlencode([(k, v) for k, v in pairs if k not in TLS_OPTIONS])
    return (f"{base}?{rest}" if rest else base), kwargs


def connection_class(url: str, sync: bool) -> dict:
    """``connection_class`` for from_url: for ``rediss://`` redis-py's TLS connection, explaining its failures."""
    if not url.startswith("rediss://"):
        return {}
    if sync:
        from redis.connection import SSLConnection
    else:
        from redis.asyncio.connection import SSLConnection
    return {"connection_class": explained(SSLConnection)}


def check_plain_url(url: str) -> None:
    """A ``redis://``, ``rediss://`` or ``unix://`` URL's options as central can use them (raises ValkeyUrlError)."""
    from redis.connection import URL_QUERY_ARGUMENT_PARSERS

    options = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query, keep_blank_values=True)
    unknown = sorted(set(options) - set(TLS_OPTIONS) - set(URL_QUERY_ARGUMENT_PARSERS))
    if unknown:
        raise ValkeyUrlError(f"unknown option(s) {', '.join(unknown)}; for TLS they are "
                             f"{', '.join(TLS_OPTIONS[:4])}")
    split_url(url)
