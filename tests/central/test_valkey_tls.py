"""Valkey over TLS (rediss://): central's clients against a real redis-server that speaks only TLS, with
certificates from a throwaway CA (tests/tls_servers.py). Valkey's certificate is verified against the CA in
redis_url and must name the host; a wrong CA, a wrong host name or a server without TLS fails the connection
with what to fix; client certificates work where Valkey demands them."""
from __future__ import annotations

import asyncio

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from central.cluster import valkey_clients
from central.cluster.leadership import Leadership
from central.cluster.lease import Lease
from tests.polling import until


@pytest.fixture(scope="module")
def certificates(tls_certificates):
    return tls_certificates


@pytest.fixture(scope="module")
def tls_redis(certificates):
    from tests.tls_servers import tls_redis_server

    with tls_redis_server(certificates) as server:
        yield server


async def test_central_talks_to_valkey_over_tls_verified_against_the_ca_in_the_url(tls_redis):
    url = tls_redis.url()  # rediss://:PASSWORD@127.0.0.1:PORT/0?ssl_ca_certs=/…/ca.pem
    client, subscriber = valkey_clients.async_clients(url)
    keeper = valkey_clients.sync_client(url)
    pubsub = subscriber.pubsub()
    try:
        assert await client.set("tls", "1") and await asyncio.to_thread(keeper.get, "tls") == b"1"
        await pubsub.subscribe("amtsklingel:tls")
        assert (await pubsub.get_message(timeout=5))["type"] == "subscribe"
        assert await client.publish("amtsklingel:tls", "hello") == 1
        assert (await pubsub.get_message(timeout=5))["data"] == b"hello"
        with tls_redis.admin() as admin:  # the server saw central's connections arrive over TLS only
            assert admin.config_get("port") == {"port": "0"}
            assert admin.info("stats")["total_connections_received"] >= 3
    finally:
        await pubsub.aclose()
        keeper.close()
        await valkey_clients.aclose(client, subscriber)


@pytest.mark.parametrize(("change", "says"), [
    ({"ssl_ca_certs": "other_ca"}, "certificate verify failed: .*not signed by the CA central trusts: ssl_ca_certs"),
    ({"host": "localhost"}, "not valid for 'localhost'.*does not name the host in redis_url"),
])
async def test_a_wrong_ca_or_host_name_fails_the_connection_with_what_to_fix(tls_redis, certificates, change, says):
    options = {k: str(getattr(certificates, v)) if k == "ssl_ca_certs" else v for k, v in change.items()}
    url = tls_redis.url(**options)
    client, subscriber = valkey_clients.async_clients(url)
    keeper = valkey_clients.sync_client(url)
    try:
        with pytest.raises(RedisConnectionError, match=says):
            await client.ping()
        with pytest.raises(RedisConnectionError, match=says):
            await asyncio.to_thread(keeper.ping)
    finally:
        keeper.close()
        await valkey_clients.aclose(client, subscriber)


async def test_without_ssl_ca_certs_the_machines_cas_decide_and_a_private_ca_is_not_among_them(tls_redis):
    client, subscriber = valkey_clients.async_clients(tls_redis.url(ssl_ca_certs=""))
    try:
        with pytest.raises(RedisConnectionError, match="not signed by the CA central trusts"):
            await client.ping()
    finally:
        await valkey_clients.aclose(client, subscriber)


async def test_a_central_that_cannot_verify_valkey_stands_by_and_says_why(tls_redis, certificates, caplog):
    """As with a Valkey that is away at start (central/cluster/leadership.py): central starts, stands by and
    says in the journal what is wrong, and keeps trying."""
    from central.rooms.redis_rooms import RedisRooms

    client, subscriber = valkey_clients.async_clients(tls_redis.url(ssl_ca_certs=str(certificates.other_ca)))
    leadership = Leadership(Lease(client), RedisRooms(client, 60), lambda: 0, lambda why: None,
                            redis_url=tls_redis.url())
    running = asyncio.create_task(leadership.run())
    try:
        await until(lambda: "standby: cannot reach Redis" in caplog.text, 5, what="the standby's complaint")
        assert "not signed by the CA central trusts" in caplog.text and "Traceback" not in caplog.text
        assert not running.done() and not leadership.leading
    finally:
        running.cancel()
        await valkey_clients.aclose(client, subscriber)


async def test_a_client_certificate_where_valkey_demands_one(tls_redis, certificates):
    with_cert = tls_redis.url(ssl_certfile=str(certificates.client), ssl_keyfile=str(certificates.client_key))
    with tls_redis.admin() as admin:
        admin.config_set("tls-auth-clients", "yes")
        try:
            for url, works in ((with_cert, True), (tls_redis.url(), False)):
                client, subscriber = valkey_clients.async_clients(url)
                keeper = valkey_clients.sync_client(url)
                try:
                    if works:
                        assert await client.set("cert", "1") and await asyncio.to_thread(keeper.get, "cert") == b"1"
                    else:  # TLS 1.3: the handshake completes, the server refuses at the first command
                        with pytest.raises(RedisError):
                            await client.ping()
                finally:
                    keeper.close()
                    await valkey_clients.aclose(client, subscriber)
        finally:
            admin.config_set("tls-auth-clients", "optional")


def test_the_journal_names_where_central_connects_without_the_password(tls_redis):
    url = tls_redis.url()
    assert "valkey-tls-test-password" not in valkey_clients.describe(url)
    assert valkey_clients.describe(url).startswith("rediss://127.0.0.1:")


async def test_central_finds_and_writes_to_the_master_through_sentinels_over_tls(tls_sentinel_group, caplog):
    """rediss+sentinel://: the sentinels and the data nodes speak only TLS and demand client certificates;
    central asks the sentinels over TLS and reaches the master they name, with every kind of its clients."""
    group = tls_sentinel_group
    assert group.url.startswith("rediss+sentinel://")
    client, subscriber = valkey_clients.async_clients(group.url)
    keeper = valkey_clients.sync_client(group.url)
    pubsub = subscriber.pubsub()
    try:
        assert await client.set("tls", "1") and await asyncio.to_thread(keeper.set, "keeper", "1")
        with group.data_client(group.master_port()) as direct:
            assert direct.get("tls") == b"1" and direct.get("keeper") == b"1"
            assert direct.config_get("port") == {"port": "0"}  # nothing but TLS there
        await pubsub.subscribe("amtsklingel:tls")
        assert (await pubsub.get_message(timeout=5))["type"] == "subscribe"
        assert await client.publish("amtsklingel:tls", "hello") == 1
        assert (await pubsub.get_message(timeout=5))["data"] == b"hello"
    finally:
        await pubsub.aclose()
        keeper.close()
        await valkey_clients.aclose(client, subscriber)

    # The sentinels' certificate checked against another CA: the journal says what to fix, briefly.
    wrong = group.url.replace(str(group.certificates.ca), str(group.certificates.other_ca))
    client, subscriber = valkey_clients.async_clients(wrong)
    try:
        with pytest.raises(RedisConnectionError, match="No master found for 'amtsklingel': .*not signed by the CA"):
            await client.ping()
    finally:
        await valkey_clients.aclose(client, subscriber)
    assert "no sentinel names a Valkey master" in caplog.text and "not signed by the CA central trusts" in caplog.text
    assert "<redis" not in caplog.text
