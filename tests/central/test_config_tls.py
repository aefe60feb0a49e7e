"""redis_url with TLS (rediss://, rediss+sentinel://): the CA and client certificate files are read at start-up,
and a wrong option or file stops central with what to write (central/cluster/valkey_tls.py, docs/deploy.md)."""
import pytest

from central.cluster.valkey_clients import SentinelUrl, describe
from central.config import Config, ConfigError

PG = "postgresql://central@db/central"


@pytest.fixture(scope="module")
def certificates(tls_certificates):
    return tls_certificates


def config(url: str) -> Config:
    return Config.from_dict({"database_url": PG, "redis_url": url})


def test_rediss_urls_with_a_ca_and_a_client_certificate_are_taken(certificates):
    url = f"rediss://:s3cret@valkey.example:6380/0?ssl_ca_certs={certificates.ca}"
    assert config(url).redis_url == url
    with_cert = f"{url}&ssl_certfile={certificates.client}&ssl_keyfile={certificates.client_key}"
    assert config(with_cert).redis_url == with_cert
    assert config("rediss://valkey.example:6380/0").redis_url  # the machine's CAs
    assert "s3cret" not in describe(url)


def test_a_sentinel_url_with_tls_carries_the_options_for_sentinels_and_data_nodes(certificates):
    url = (f"rediss+sentinel://:s3cret@10.0.0.7:26379,10.0.0.8/amtsklingel/0?sentinel_password=sp"
           f"&ssl_ca_certs={certificates.ca}&ssl_certfile={certificates.client}&ssl_keyfile={certificates.client_key}")
    assert config(url).redis_url == url
    target = SentinelUrl.parse(url)
    assert target.sentinels == (("10.0.0.7", 26379), ("10.0.0.8", 26379)) and target.sentinel_password == "sp"
    assert target.tls == {"ssl_cert_reqs": "required", "ssl_check_hostname": True, "ssl_ca_certs": str(certificates.ca),
                          "ssl_certfile": str(certificates.client), "ssl_keyfile": str(certificates.client_key)}
    assert SentinelUrl.parse("redis+sentinel://10.0.0.7/amtsklingel").tls is None
    assert SentinelUrl.parse("rediss+sentinel://10.0.0.7/amtsklingel?ssl_check_hostname=false").tls[
        "ssl_check_hostname"] is False
    assert describe(url).endswith("over TLS") and "s3cret" not in describe(url)


@pytest.mark.parametrize(("url", "says"), [
    ("rediss://h:6380/0?ssl_ca_certs=/nonexistent/ca.pem",
     "/nonexistent/ca.pem \\(ssl_ca_certs\\) cannot be read: No such file or directory; central's service user"),
    ("rediss://h:6380/0?ssl_ca_certs={client_key}", "holds no PEM certificate: it must be the CA certificate"),
    ("redis://h:6379/0?ssl_ca_certs={ca}", "ssl_ca_certs need TLS: write rediss:// instead of redis://"),
    ("rediss://h:6380/0?ssl_ca_cert={ca}", "unknown option\\(s\\) ssl_ca_cert; for TLS they are ssl_ca_certs"),
    ("rediss://h:6380/0?ssl_cert_reqs=none", "ssl_cert_reqs=none is refused: central always verifies"),
    ("rediss://h:6380/0?ssl_check_hostname=maybe", "ssl_check_hostname must be true or false"),
    ("rediss://h:6380/0?ssl_keyfile={client_key}", "ssl_keyfile goes with ssl_certfile"),
    ("rediss://h:6380/0?ssl_certfile={client}&ssl_keyfile={server_key}", "do not make a client certificate"),
    ("rediss://h:6380/0?ssl_certfile=/nonexistent/c.pem", "/nonexistent/c.pem \\(ssl_certfile\\) cannot be read"),
    ("redis+sentinel://h/amtsklingel?ssl_ca_certs={ca}", "need TLS: write rediss\\+sentinel:// instead"),
    ("rediss+sentinel://h/amtsklingel?ssl_ca_certs=/nonexistent/ca.pem", "cannot be read: No such file"),
    ("rediss+sentinel://h/amtsklingel?ca=x", "unknown option\\(s\\) ca; known are sentinel_password.*ssl_ca_certs"),
])
def test_a_wrong_tls_option_or_file_stops_start_up_with_what_to_write(certificates, url, says):
    url = url.format(ca=certificates.ca, client=certificates.client, client_key=certificates.client_key,
                     server_key=certificates.server_key)
    with pytest.raises(ConfigError, match=f"^configuration: redis_url: .*{says}.*; e.g. redis_url = \"redis"):
        config(url)


def test_the_tls_url_comes_from_the_environment_too(monkeypatch, certificates):
    monkeypatch.setenv("AMTSKLINGEL_REDIS_URL", "rediss://h:6380/0?ssl_ca_certs=/nonexistent/ca.pem")
    with pytest.raises(ConfigError, match="^AMTSKLINGEL_REDIS_URL: redis_url: /nonexistent/ca.pem"):
        Config.from_dict({"database_url": PG})
    monkeypatch.setenv("AMTSKLINGEL_REDIS_URL", f"rediss://h:6380/0?ssl_ca_certs={certificates.ca}")
    assert Config.from_dict({"database_url": PG}).redis_url.startswith("rediss://h:6380/0?ssl_ca_certs=/")


def test_redis_py_gets_the_url_without_the_tls_options_and_plain_urls_unchanged(certificates):
    from central.cluster.valkey_tls import split_url

    for url in ("redis://:s%40cret@10.1.2.5:6379/0", "unix:///run/valkey/valkey.sock?db=2", "rediss://h:6379/0"):
        assert split_url(url)[0] == url
    url, kwargs = split_url(f"rediss://:pw@h:6379/0?ssl_ca_certs={certificates.ca}&db=1&ssl_check_hostname=no")
    assert url == "rediss://:pw@h:6379/0?db=1"
    assert kwargs == {"ssl_cert_reqs": "required", "ssl_check_hostname": False, "ssl_ca_certs": str(certificates.ca)}


def test_plain_urls_keep_redis_pys_own_options():
    assert config("redis://h:6379/0?health_check_interval=10").redis_url
    with pytest.raises(ConfigError, match="unknown option\\(s\\) sentinel_password"):
        config("redis://h:6379/0?sentinel_password=x")
