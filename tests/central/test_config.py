"""Configuration errors name the setting and say what to write."""
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
