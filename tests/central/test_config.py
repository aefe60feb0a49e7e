"""Configuration errors name the setting and say what to write."""
import re

import pytest

from central.config import Config, ConfigError


def test_missing_database_url_is_explained():
    with pytest.raises(ConfigError, match="database_url.*is missing"):
        Config.from_dict({})


def test_unknown_setting_is_refused_not_ignored():
    with pytest.raises(ConfigError, match="unknown setting.*prot"):
        Config.from_dict({"database_url": "sqlite:///x.db", "prot": 8080})


def test_wrong_type_is_refused():
    with pytest.raises(ConfigError, match="'port' has the wrong type"):
        Config.from_dict({"database_url": "sqlite:///x.db", "port": "8080"})


def test_ice_servers_default_to_none_and_turn_needs_credentials():
    assert Config.from_dict({"database_url": "sqlite:///x.db"}).ice_servers == ()
    with pytest.raises(ConfigError, match="needs username and credential"):
        Config.from_dict({"database_url": "sqlite:///x.db", "ice_servers": [{"urls": ["turn:turn.example:3478"]}]})
    ok = Config.from_dict({"database_url": "sqlite:///x.db", "ice_servers": [
        {"urls": ["turn:turn.stadt.example:3478"], "username": "u", "credential": "c"}]})
    assert ok.ice_servers[0].username == "u"


def test_example_configuration_is_valid(tmp_path):
    from pathlib import Path
    example = Path(__file__).resolve().parents[2] / "docs" / "central.example.toml"
    assert Config.from_file(example).port == 8080


def test_ice_networks_default_to_private_ranges_and_are_checked():
    from protocol.candidates import DEFAULT_NETWORKS

    assert Config.from_dict({"database_url": "sqlite://"}).ice_networks == DEFAULT_NETWORKS
    assert Config.from_dict({"database_url": "sqlite://", "ice_networks": []}).ice_networks == ()
    assert Config.from_dict({"database_url": "sqlite://",
                             "ice_networks": ["10.20.0.0/16", "2a01:4f8::/32"]}).ice_networks == (
        "10.20.0.0/16", "2a01:4f8::/32")
    for wrong, message in (("10.0.0.0/8", "must be a list"), (["10.0.0.1/8"], "did you mean 10.0.0.0/8"),
                           (["169.254.0.0/16"], "never allowed"), (["Rathaus"], "not a network")):
        with pytest.raises(ConfigError, match=f"ice_networks.*{message}"):
            Config.from_dict({"database_url": "sqlite://", "ice_networks": wrong})


@pytest.mark.parametrize(("written", "origin"), [
    ("https://buergerbuero.musterdorf.de/", "https://buergerbuero.musterdorf.de"),
    ("HTTPS://Buergerbuero.Musterdorf.DE", "https://buergerbuero.musterdorf.de"),
    ("https://buergerbuero.musterdorf.de:443/", "https://buergerbuero.musterdorf.de"),
    ("http://localhost:8080/", "http://localhost:8080"),
    ("https://bürgerbüro.musterdorf.de", "https://xn--brgerbro-65af.musterdorf.de"),
    ("https://[2001:db8::1]:8443", "https://[2001:db8::1]:8443"),
])
def test_public_url_is_written_as_browsers_send_their_origin(written, origin):
    assert Config.from_dict({"database_url": "sqlite:///x.db", "public_url": written}).public_url == origin


@pytest.mark.parametrize(("written", "complaint"), [
    ("https://buergerbuero.musterdorf.de/amtsklingel", "no path"),
    ("https://buergerbuero.musterdorf.de/?x=1", "no path, query"),
    ("https://buergerbuero.musterdorf.de/#top", "no path, query"),
    ("https://admin:pw@buergerbuero.musterdorf.de", "or user"),
    ("buergerbuero.musterdorf.de", "must start with https://"),
    ("wss://buergerbuero.musterdorf.de", "must start with https://"),
    ("https://", "name a host"),
    ("https://buergerbuero.musterdorf.de:70000", "not a URL"),
    (["https://a.example"], "must be text"),
])
def test_a_public_url_that_cannot_be_an_origin_is_refused(written, complaint):
    with pytest.raises(ConfigError, match=re.escape(complaint)) as caught:
        Config.from_dict({"database_url": "sqlite:///x.db", "public_url": written})
    assert 'public_url = "https://buergerbuero.musterdorf.de"' in str(caught.value)


def test_trusted_proxies_are_addresses_or_networks():
    config = Config.from_dict({"database_url": "sqlite:///x.db", "trusted_proxies": ["127.0.0.1", "10.1.0.0/16",
                                                                                    "::1"]})
    assert [str(n) for n in config.trusted_proxies] == ["127.0.0.1/32", "10.1.0.0/16", "::1/128"]
    assert Config.from_dict({"database_url": "sqlite:///x.db"}).trusted_proxies == ()
    with pytest.raises(ConfigError, match="trusted_proxies.*networks such as"):
        Config.from_dict({"database_url": "sqlite:///x.db", "trusted_proxies": ["proxy.stadt.local"]})
    with pytest.raises(ConfigError, match="must be a list"):
        Config.from_dict({"database_url": "sqlite:///x.db", "trusted_proxies": "127.0.0.1"})


def test_update_keyring_must_be_certificates_without_a_key(tmp_path):
    from tests.rauc_bundles import make_keys

    keys = make_keys(tmp_path)
    assert Config.from_dict({"database_url": "sqlite://", "update_keyring": str(keys.ca_pem)}).update_keyring
    with pytest.raises(ConfigError, match="update_keyring .*cannot be read"):
        Config.from_dict({"database_url": "sqlite://", "update_keyring": str(tmp_path / "missing.pem")})
    with pytest.raises(ConfigError, match="holds a private key"):
        Config.from_dict({"database_url": "sqlite://", "update_keyring": str(keys.key_pem)})
    (tmp_path / "empty.pem").write_text("nothing here\n")
    with pytest.raises(ConfigError, match="holds no PEM certificate"):
        Config.from_dict({"database_url": "sqlite://", "update_keyring": str(tmp_path / "empty.pem")})


def test_bundle_files_live_beside_the_sqlite_database_unless_set():
    from pathlib import Path

    assert Config(database_url="sqlite:////var/lib/amtsklingel/central.db").bundle_directory == Path(
        "/var/lib/amtsklingel/bundles")
    assert Config(database_url="postgresql://db/amtsklingel").bundle_directory is None
    assert Config(database_url="postgresql://db/amtsklingel", bundle_dir="/srv/bundles").bundle_directory == Path(
        "/srv/bundles")
    with pytest.raises(ConfigError, match="bundle_max_mb"):
        Config.from_dict({"database_url": "sqlite://", "bundle_max_mb": 0})


def test_update_keyring_needs_the_openssl_command(tmp_path, monkeypatch):
    import shutil

    from tests.rauc_bundles import make_keys

    keys = make_keys(tmp_path)
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(ConfigError, match="openssl command .* is missing: install it"):
        Config.from_dict({"database_url": "sqlite://", "update_keyring": str(keys.ca_pem)})


def test_visitors_from_home_per_department_is_a_number_of_zero_or_more():
    assert Config.from_dict({"database_url": "sqlite:///x.db"}).online_visits_per_department == 10
    assert Config.from_dict({"database_url": "sqlite:///x.db",
                             "online_visits_per_department": 0}).online_visits_per_department == 0
    with pytest.raises(ConfigError, match="'online_visits_per_department' must be 0 .no visits from home. or more"):
        Config.from_dict({"database_url": "sqlite:///x.db", "online_visits_per_department": -1})
    with pytest.raises(ConfigError, match="'online_visits_per_department' has the wrong type"):
        Config.from_dict({"database_url": "sqlite:///x.db", "online_visits_per_department": "10"})


def test_several_centrals_need_postgresql_and_take_the_redis_url_from_the_environment(monkeypatch):
    monkeypatch.delenv("AMTSKLINGEL_REDIS_URL", raising=False)
    with pytest.raises(ConfigError, match="share one PostgreSQL"):
        Config.from_dict({"database_url": "sqlite:///x.db", "redis_url": "redis://10.1.2.5:6379/0"})
    with pytest.raises(ConfigError, match="redis://"):
        Config.from_dict({"database_url": "postgresql://c@db/central", "redis_url": "10.1.2.5:6379"})
    assert Config.from_dict({"database_url": "sqlite:///x.db"}).redis_url is None  # one central: as before
    monkeypatch.setenv("AMTSKLINGEL_REDIS_URL", "redis://:s3cret@10.1.2.5:6379/0")
    config = Config.from_dict({"database_url": "postgresql://c@db/central"})
    assert config.redis_url == "redis://:s3cret@10.1.2.5:6379/0" and "s3cret" not in repr(config)


def test_the_lease_stall_limit_is_a_positive_number_of_seconds():
    assert Config.from_dict({"database_url": "sqlite://", "lease_stall_limit_s": 10}).lease_stall_limit_s == 10
    for wrong, message in ((0, "greater than 0"), ("5", "wrong type")):
        with pytest.raises(ConfigError, match=f"lease_stall_limit_s.*{message}"):
            Config.from_dict({"database_url": "sqlite://", "lease_stall_limit_s": wrong})
