"""redis_url may name Valkey under Sentinel: the sentinels, the master's name, the passwords; a wrong URL stops
start-up with what to write (docs/deploy.md, docs/decisions/0008-several-centrals.md)."""
import pytest

from central.cluster.valkey_clients import SentinelUrl, describe
from central.config import Config, ConfigError

PG = "postgresql://central@db/central"
GOOD = "redis+sentinel://:s3cret@10.0.0.7:26379,10.0.0.8:26380,valkey-c/amtsklingel"


def config(url: str) -> Config:
    return Config.from_dict({"database_url": PG, "redis_url": url})


def test_a_sentinel_url_names_the_sentinels_the_service_and_the_passwords():
    assert config(GOOD).redis_url == GOOD
    target = SentinelUrl.parse(GOOD + "/2?sentinel_password=s%40ntinel")
    assert target.sentinels == (("10.0.0.7", 26379), ("10.0.0.8", 26380), ("valkey-c", 26379))
    assert (target.service, target.db, target.password, target.sentinel_password) == (
        "amtsklingel", 2, "s3cret", "s@ntinel")
    assert SentinelUrl.parse("redis+sentinel://central:pw@[::1]:26379/amtsklingel").sentinels == (("::1", 26379),)
    assert SentinelUrl.parse("redis+sentinel://127.0.0.1/svc").password is None  # no password: allowed
    # The journal names where central connects, never a password.
    assert "s3cret" not in describe(GOOD) and "10.0.0.8:26380" in describe(GOOD)
    assert "s3cret" not in repr(target) and "s@ntinel" not in repr(target)
    assert describe("redis://:s3cret@10.0.0.7:6379/0") == "redis://10.0.0.7:6379/0"


@pytest.mark.parametrize(("url", "says"), [
    ("redis+sentinel:///amtsklingel", "name the sentinels"),
    ("redis+sentinel://10.0.0.7:26379", "/SERVICE, the master's name"),
    ("redis+sentinel://10.0.0.7:26379/", "/SERVICE, the master's name"),
    ("redis+sentinel://10.0.0.7:263799/amtsklingel", "'10.0.0.7:263799' is not host:port of a sentinel"),
    ("redis+sentinel://10.0.0.7:26379,/amtsklingel", "'' is not host:port"),
    ("redis+sentinel://10.0.0.7/amtsklingel/zero", "must be a number such as 0"),
    ("redis+sentinel://10.0.0.7/amtsklingel/0/1", "optionally followed by /DB"),
    ("redis+sentinel://s3cret@10.0.0.7/amtsklingel", "password after a colon"),
    ("redis+sentinel://10.0.0.7/amtsklingel?password=x", "unknown option.*password.*sentinel_password"),
])
def test_a_wrong_sentinel_url_says_what_to_write(url, says):
    with pytest.raises(ConfigError, match=says) as caught:
        config(url)
    assert "e.g. redis_url = \"redis+sentinel://:PASSWORD@" in str(caught.value)
    assert "s3cret" not in str(caught.value)


def test_other_schemes_are_still_refused_and_plain_urls_unchanged():
    with pytest.raises(ConfigError, match="redis://, rediss://, unix://, redis\\+sentinel:// or rediss\\+sentinel://"):
        config("sentinel://10.0.0.7:26379/amtsklingel")
    assert config("redis://10.0.0.7:6379/0").redis_url == "redis://10.0.0.7:6379/0"


def test_the_sentinel_url_comes_from_the_environment_too(monkeypatch):
    monkeypatch.setenv("AMTSKLINGEL_REDIS_URL", GOOD)
    assert Config.from_dict({"database_url": PG}).redis_url == GOOD
    monkeypatch.setenv("AMTSKLINGEL_REDIS_URL", "redis+sentinel://10.0.0.7")
    with pytest.raises(ConfigError, match="^AMTSKLINGEL_REDIS_URL: redis_url: after the sentinels"):
        Config.from_dict({"database_url": PG})
    monkeypatch.delenv("AMTSKLINGEL_REDIS_URL")
    with pytest.raises(ConfigError, match="must share one PostgreSQL"):
        Config.from_dict({"database_url": "sqlite:///x.db", "redis_url": GOOD})
