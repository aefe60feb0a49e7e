"""Central behind TLS with a CA the test makes: the appliance trusts exactly the CA it is told to."""
from __future__ import annotations

import asyncio

import pytest

from appliance.call.backoff import Backoff
from appliance.call.signaling import CentralLink, CertificateRejected
from appliance.call.tls import Trust
from appliance.config import ApplianceConfig
from appliance.controller.view import EnrolScreen
from appliance.fleet.enrol import Enrolment
from appliance.hardware.fake.unit import FakeUnit
from appliance.service.main import start
from central.config import Config
from tests.central.conftest import running_central
from tests.tls import make_ca


@pytest.fixture
async def tls_central(tmp_path):
    city_ca = make_ca("Stadt Musterdorf CA")
    context = city_ca.server_context(tmp_path, hosts=("localhost", "127.0.0.1"))
    config = Config(database_url=f"sqlite:///{tmp_path}/central.db", secure_cookies=False)
    async with running_central(config, ssl_context=context) as central:
        central.ca_file = city_ca.write(tmp_path / "city-ca.pem")
        yield central


async def _connect(url: str, token: str, trust: Trust):
    async with trust.http_session() as http:
        link = CentralLink(url, token, http, trust)
        try:
            return await link.connect(timeout_s=10)
        finally:
            await link.close()


async def test_the_citys_ca_lets_the_kiosk_in(tls_central):
    assert tls_central.url.startswith("https://127.0.0.1:")
    welcome = await _connect(tls_central.url, tls_central.credentials["kiosk_token"], Trust(tls_central.ca_file))
    assert welcome.kiosk_location == "Rathaus Musterdorf, Foyer"
    by_name = tls_central.url.replace("127.0.0.1", "localhost")
    assert (await _connect(by_name, tls_central.credentials["kiosk_token"], Trust(tls_central.ca_file))).kiosk_location


async def test_another_ca_is_refused_with_what_to_check(tls_central, tmp_path):
    other = make_ca("Somebody Else CA").write(tmp_path / "other-ca.pem")
    with pytest.raises(CertificateRejected) as refused:
        await _connect(tls_central.url, tls_central.credentials["kiosk_token"], Trust(other))
    message = str(refused.value)
    assert "does not trust" in message and f"ca_file ({other})" in message and "clock" in message
    assert not tls_central.hub.kiosks, "no kiosk session may open over an untrusted connection"


async def test_without_ca_file_only_the_system_store_counts(tls_central):
    # The test's CA is in no system store: the certificate is refused, the token never sent.
    with pytest.raises(CertificateRejected, match="a CA the system trusts"):
        await _connect(tls_central.url, tls_central.credentials["kiosk_token"], Trust())


async def test_a_certificate_for_another_name_is_refused(tmp_path):
    city_ca = make_ca("Stadt Musterdorf CA")
    context = city_ca.server_context(tmp_path, hosts=("other.musterdorf.test",))
    config = Config(database_url=f"sqlite:///{tmp_path}/central.db", secure_cookies=False)
    async with running_central(config, ssl_context=context) as central:
        ca_file = city_ca.write(tmp_path / "city-ca.pem")
        with pytest.raises(CertificateRejected, match="names 127.0.0.1"):
            await _connect(central.url, central.credentials["kiosk_token"], Trust(ca_file))


async def test_the_appliance_goes_online_over_tls_with_its_ca_file(tls_central):
    config = ApplianceConfig(central_url=tls_central.url, token=tls_central.credentials["kiosk_token"],
                             hardware={"backend": "fake"}, kiosk_port=0, ca_file=tls_central.ca_file)
    unit = await start(config)
    try:
        await asyncio.wait_for(unit.session.connected.wait(), timeout=10)
    finally:
        await unit.close()


async def test_the_enrolment_link_checks_central_the_same_way(tls_central, tmp_path, caplog):
    shown: list[EnrolScreen] = []
    changed = asyncio.Event()

    def show(screen: EnrolScreen) -> None:
        shown.append(screen)
        changed.set()

    async def enrol_until(trust: Trust, predicate) -> EnrolScreen:
        shown.clear()
        enrolment = Enrolment(tls_central.url, tmp_path / "kiosk-token", FakeUnit("fake-7150c0de"), "0.1.0",
                              show=show, trust=trust, backoff=Backoff(start_s=0.05, max_s=0.2))
        task = asyncio.get_running_loop().create_task(enrolment.run())
        try:
            async with asyncio.timeout(15):
                while not (shown and predicate(shown[-1])):
                    changed.clear()
                    await changed.wait()
            return shown[-1]
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    other = make_ca("Somebody Else CA").write(tmp_path / "other-ca.pem")
    refused = await enrol_until(Trust(other), lambda s: s.unreachable)
    assert refused.code is None
    assert any("does not trust" in r.getMessage() and "other-ca.pem" in r.getMessage() for r in caplog.records)
    offered = await enrol_until(Trust(tls_central.ca_file), lambda s: s.code is not None)
    assert offered.claim_url.endswith(f"code={offered.code}")
