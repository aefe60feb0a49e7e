"""Appliance configuration: a caretaker's mistakes get a message saying what to do."""
from pathlib import Path

import pytest

from appliance.config import ApplianceConfig, ConfigError

TOKEN = "3." + "x" * 43


def test_a_complete_configuration_loads(tmp_path):
    (tmp_path / "kiosk-token").write_text(TOKEN + "\n")
    (tmp_path / "appliance.toml").write_text('central_url = "https://stadt.example/"\ntoken_file = "kiosk-token"\n'
                                             '[hardware]\nbackend = "fake"\n')
    config = ApplianceConfig.load(tmp_path / "appliance.toml")
    assert config.central_url == "https://stadt.example" and config.token == TOKEN
    assert config.kiosk_host == "127.0.0.1"


@pytest.mark.parametrize("raw, message", [
    ({}, "central_url must be"),
    ({"central_url": "stadt.example", "token": TOKEN}, "central_url must be"),
    ({"central_url": "https://s.example"}, "token is missing"),
    ({"central_url": "https://s.example", "token": "short"}, "token is missing or malformed"),
    ({"central_url": "https://s.example", "token": TOKEN, "token_file": "x"}, "either token or token_file"),
    ({"central_url": "https://s.example", "token_file": "nowhere"}, "enrol the unit again"),
    ({"central_url": "https://s.example", "token": TOKEN, "hardware": {"backend": "pie"}}, "hardware.backend"),
    ({"central_url": "https://s.example", "token": TOKEN, "languages": ["de", "fr"]}, "fr not shipped"),
    ({"central_url": "https://s.example", "token": TOKEN, "kiosk": {"port": 0}}, "kiosk.port"),
    ({"central_url": "https://s.example", "token": TOKEN, "centrl": 1}, "unknown setting"),
    ({"central_url": "https://s.example", "token": TOKEN, "ice_networks": "10.0.0.0/8"}, "must be a list"),
    ({"central_url": "https://s.example", "token": TOKEN, "ice_networks": ["10.0.0.1/8"]}, "did you mean 10.0.0.0/8"),
    ({"central_url": "https://s.example", "token": TOKEN, "ice_networks": ["169.254.0.0/16"]}, "never allowed"),
    ({"central_url": "https://s.example", "token": TOKEN, "call_connect_timeout_s": 0}, "between 1 and 600"),
])
def test_mistakes_are_explained(raw, message, tmp_path):
    with pytest.raises(ConfigError, match=message):
        ApplianceConfig.from_dict(raw, base=tmp_path)


def test_missing_file_says_where_the_example_is(tmp_path):
    with pytest.raises(ConfigError, match="docs/appliance.example.toml"):
        ApplianceConfig.load(tmp_path / "absent.toml")


def test_the_example_file_is_valid_apart_from_the_token(tmp_path):
    example = Path(__file__).resolve().parents[2] / "docs" / "appliance.example.toml"
    text = example.read_text().replace('token_file = "/var/lib/amtsklingel/kiosk-token"', f'token = "{TOKEN}"')
    (tmp_path / "a.toml").write_text(text)
    assert ApplianceConfig.load(tmp_path / "a.toml").hardware["backend"] == "pi"
