"""Appliance configuration: a caretaker's mistakes get a message saying what to do."""
from pathlib import Path

import pytest

from appliance.config import ApplianceConfig, ConfigError, is_test_host

TOKEN = "3." + "x" * 43
FAKE = {"backend": "fake"}


def test_a_complete_configuration_loads(tmp_path):
    (tmp_path / "kiosk-token").write_text(TOKEN + "\n")
    (tmp_path / "appliance.toml").write_text('central_url = "https://stadt.example/"\ntoken_file = "kiosk-token"\n'
                                             '[hardware]\nbackend = "fake"\n')
    config = ApplianceConfig.load(tmp_path / "appliance.toml")
    assert config.central_url == "https://stadt.example" and config.token == TOKEN
    assert config.kiosk_host == "127.0.0.1"
    assert config.token_path == tmp_path / "kiosk-token"


def test_the_image_settings_come_first_and_the_units_own_win_table_by_table(tmp_path):
    builtin, local = tmp_path / "usr/appliance.toml", tmp_path / "etc/appliance.toml"
    builtin.parent.mkdir()
    local.parent.mkdir()
    (builtin.parent / "city-ca.pem").write_text(_ca_pem())
    builtin.write_text('central_url = "https://buergerbuero.musterdorf.de"\nca_file = "city-ca.pem"\n'
                       '[hardware]\nbackend = "pi"\n[hardware.button]\npin = 17\n[kiosk]\nport = 8001\n')
    local.write_text('data_dir = "data"\n[hardware]\nbackend = "fake"\n')
    config = ApplianceConfig.load(builtin, local)
    assert config.central_url == "https://buergerbuero.musterdorf.de"
    assert config.ca_file == builtin.parent / "city-ca.pem"  # relative to the file that names it
    assert config.hardware == {"backend": "fake"}  # the whole table replaced, the button pin not kept
    assert config.kiosk_port == 8001
    assert config.data_dir == local.parent / "data"
    assert config.token is None and config.token_path == local.parent / "data/kiosk-token"


def test_either_file_alone_is_enough(tmp_path):
    only = tmp_path / "appliance.toml"
    only.write_text('central_url = "http://central.amtsklingel.test:8080"\n[hardware]\nbackend = "fake"\n')
    assert ApplianceConfig.load(tmp_path / "absent.toml", only).central_url == "http://central.amtsklingel.test:8080"
    assert ApplianceConfig.load(only, tmp_path / "absent.toml").central_url.startswith("http://central")


@pytest.mark.parametrize("content", [None, "", "\n  \n"])
def test_without_a_token_the_unit_starts_in_enrolment_mode(tmp_path, content):
    if content is not None:
        (tmp_path / "kiosk-token").write_text(content)
    config = ApplianceConfig.from_dict({"central_url": "https://s.example", "data_dir": str(tmp_path),
                                        "hardware": FAKE})
    assert config.token is None
    assert config.token_path == tmp_path / "kiosk-token"
    assert config.with_token(TOKEN).token == TOKEN


def test_missing_hardware_stops_start_up_with_what_to_write(tmp_path):
    builtin, local = tmp_path / "builtin.toml", tmp_path / "local.toml"
    builtin.write_text('central_url = "https://s.example"\n')
    local.write_text('languages = ["de"]\n')
    with pytest.raises(ConfigError, match=r'set \[hardware\] backend = "pi" on a Raspberry Pi, or "fake"') as err:
        ApplianceConfig.load(builtin, local)
    assert str(builtin) in str(err.value) and str(local) in str(err.value)
    with pytest.raises(ConfigError, match=r"set \[hardware\]"):
        ApplianceConfig(central_url="https://s.example", hardware={})


@pytest.mark.parametrize("url", ["http://localhost:8080", "http://127.0.0.1:8080", "http://127.3.4.5",
                                 "http://[::1]:8080", "http://central.amtsklingel.test:8080", "https://s.example",
                                 "https://10.1.2.3"])
def test_http_is_accepted_only_on_this_machine_or_under_test(url):
    assert ApplianceConfig.from_dict({"central_url": url, "hardware": FAKE}).central_url == url


@pytest.mark.parametrize("url", ["http://buergerbuero.musterdorf.de", "http://10.1.2.3:8080", "http://[fd00::1]",
                                 "http://localhost.musterdorf.de", "http://test.example", "http://example.test.de"])
def test_http_elsewhere_is_refused_at_load(url, tmp_path):
    path = tmp_path / "appliance.toml"
    path.write_text(f'central_url = "{url}"\n[hardware]\nbackend = "fake"\n')
    with pytest.raises(ConfigError, match="use https://"):
        ApplianceConfig.load(path)
    with pytest.raises(ConfigError, match="use https://"):
        ApplianceConfig(central_url=url, hardware=FAKE)


def test_test_hosts():
    assert is_test_host("LOCALHOST.") and is_test_host("a.b.test") and is_test_host("::1")
    assert not is_test_host("testing.de") and not is_test_host("192.168.1.1")


def test_a_ca_file_that_is_no_certificate_is_refused_at_load(tmp_path):
    (tmp_path / "ca.pem").write_text("this is the city's CA, honestly\n")
    with pytest.raises(ConfigError, match="not a CA certificate in PEM format"):
        ApplianceConfig.from_dict({"central_url": "https://s.example", "hardware": FAKE, "ca_file": "ca.pem"},
                                  base=tmp_path)
    with pytest.raises(ConfigError, match="does not exist"):
        ApplianceConfig.from_dict({"central_url": "https://s.example", "hardware": FAKE, "ca_file": "absent.pem"},
                                  base=tmp_path)


@pytest.mark.parametrize("raw, message", [
    ({}, "central_url must be"),
    ({"central_url": "stadt.example", "token": TOKEN}, "central_url must be"),
    ({"central_url": "https://s.example", "token": TOKEN}, r"set \[hardware\]"),
    ({"central_url": "https://s.example", "token": "short", "hardware": FAKE}, "token is malformed"),
    ({"central_url": "https://s.example", "token": TOKEN, "token_file": "x", "hardware": FAKE},
     "either token or token_file"),
    ({"central_url": "https://s.example", "token": TOKEN, "hardware": {"backend": "pie"}}, "hardware.backend"),
    ({"central_url": "https://s.example", "token": TOKEN, "hardware": FAKE, "languages": ["de", "fr"]},
     "fr not shipped"),
    ({"central_url": "https://s.example", "token": TOKEN, "hardware": FAKE, "kiosk": {"port": 0}}, "kiosk.port"),
    ({"central_url": "https://s.example", "token": TOKEN, "hardware": FAKE, "centrl": 1}, "unknown setting"),
    ({"central_url": "https://s.example", "token": TOKEN, "hardware": FAKE, "ice_networks": "10.0.0.0/8"},
     "must be a list"),
    ({"central_url": "https://s.example", "token": TOKEN, "hardware": FAKE, "ice_networks": ["10.0.0.1/8"]},
     "did you mean 10.0.0.0/8"),
    ({"central_url": "https://s.example", "token": TOKEN, "hardware": FAKE, "ice_networks": ["169.254.0.0/16"]},
     "never allowed"),
    ({"central_url": "https://s.example", "token": TOKEN, "hardware": FAKE, "call_connect_timeout_s": 0},
     "between 1 and 600"),
    ({"central_url": "https://s.example", "hardware": FAKE, "data_dir": 3}, "data_dir must be"),
])
def test_mistakes_are_explained(raw, message, tmp_path):
    with pytest.raises(ConfigError, match=message):
        ApplianceConfig.from_dict(raw, base=tmp_path)


def test_a_malformed_token_file_says_how_to_enrol_again(tmp_path):
    (tmp_path / "kiosk-token").write_text("not a token\n")
    with pytest.raises(ConfigError, match="delete the token file to enrol the unit again"):
        ApplianceConfig.from_dict({"central_url": "https://s.example", "hardware": FAKE, "data_dir": "."},
                                  base=tmp_path)


def test_missing_files_say_where_the_example_is(tmp_path):
    with pytest.raises(ConfigError, match="docs/appliance.example.toml"):
        ApplianceConfig.load(tmp_path / "absent.toml", tmp_path / "also-absent.toml")


def test_the_example_file_is_valid_and_enrols_by_code(tmp_path):
    example = Path(__file__).resolve().parents[2] / "docs" / "appliance.example.toml"
    text = example.read_text().replace('"/var/lib/amtsklingel"', f'"{tmp_path}"')
    (tmp_path / "a.toml").write_text(text)
    config = ApplianceConfig.load(tmp_path / "a.toml")
    assert config.hardware["backend"] == "pi"
    assert config.token is None and config.token_path == tmp_path / "kiosk-token"


def _ca_pem() -> str:
    from tests.tls import make_ca
    return make_ca("Musterdorf CA").pem
