"""The update download against the real central: a real RAUC bundle from its library, fetched with the
kiosk's token through the loopback proxy, with the line to central cut in the middle."""
from __future__ import annotations

import asyncio

import pytest
import pytest_asyncio

from appliance.update.fake_slots import FakeSlots
from appliance.update.fetch import BundleProxy, Retry
from tests.appliance.test_update_fetch import read_as_rauc
from tests.central.conftest import running_central, update_config
from tests.rauc_bundles import make_bundle, make_keys, make_stand_in_root


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    directory = tmp_path_factory.mktemp("update-central")
    keys = make_keys(directory / "keys")
    root = make_stand_in_root(directory, "2.0.0", random_mb=2)
    return keys, make_bundle(directory, keys, "2.0.0+next", root=root)


@pytest_asyncio.fixture
async def central(tmp_path, made):
    keys, _ = made
    config = update_config(tmp_path, keys.ca_pem)
    async with running_central(config) as c:
        yield c


class CuttingLine:
    """A TCP relay to central that drops each of the first connections after ``cut_after`` bytes of answer."""

    def __init__(self, target_port: int, cut_after: int, cuts: int) -> None:
        self.target_port, self.cut_after, self.cuts = target_port, cut_after, cuts
        self.port = 0

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def _relay(self, client_r, client_w) -> None:
        central_r, central_w = await asyncio.open_connection("127.0.0.1", self.target_port)
        cut = self.cuts > 0
        self.cuts -= 1

        async def pipe(r, w, limit):
            sent = 0
            try:
                while data := await r.read(4096):
                    if limit is not None and sent + len(data) > limit:
                        w.write(data[:limit - sent])
                        await w.drain()
                        break
                    w.write(data)
                    sent += len(data)
                    await w.drain()
            except ConnectionError:
                pass
            finally:
                for writer in (client_w, central_w):
                    writer.close()

        await asyncio.gather(pipe(client_r, central_w, None), pipe(central_r, client_w, self.cut_after if cut else None))

    def close(self) -> None:
        self.server.close()


async def test_a_real_bundle_from_central_through_a_line_cut_twice(central, made):
    _, bundle = made
    info = await central.app["bundles"].add_file(bundle)
    _, token = await central.db.create_kiosk("Bibliothek")
    port = int(central.url.rsplit(":", 1)[1].split("/")[0])
    line = CuttingLine(port, cut_after=700_000, cuts=2)
    await line.start()
    proxy = BundleProxy(f"http://127.0.0.1:{line.port}{info.path}", token=token, size=info.size_bytes,
                        retry=Retry(attempts=4, first_s=0.01, max_s=0.05), max_kbit_s=None)
    await proxy.start()
    try:
        got = await read_as_rauc(proxy.url, block=1024 * 1024)
    finally:
        await proxy.close()
        line.close()
    assert got == bundle.read_bytes() and got[:4] == b"hsqs"  # a squashfs: the magic RAUC looks at first
    assert proxy.resumes == 2 and proxy.problem is None and proxy.etag == f'"{info.sha256}"'
    assert proxy.downloaded_bytes == info.size_bytes + 4  # nothing twice but the first look: resumed where cut


async def test_the_fake_slots_install_a_real_bundle_from_central(central, made, tmp_path):
    _, bundle = made
    info = await central.app["bundles"].add_file(bundle)
    _, token = await central.db.create_kiosk("Bibliothek")
    proxy = BundleProxy(central.url + info.path, token=token, size=info.size_bytes)
    await proxy.start()
    slots = FakeSlots(tmp_path / "slots.json", version="1.0")
    try:
        await slots.install(proxy.url, lambda pct: None)
    finally:
        await proxy.close()
    status = await slots.status()
    assert (status.primary, status.slots["B"].version) == ("B", "2.0.0+next")  # the manifest RAUC signed


async def test_a_kiosk_token_central_does_not_know_is_a_clear_problem(central, made):
    _, bundle = made
    info = await central.app["bundles"].add_file(bundle)
    proxy = BundleProxy(central.url + info.path, token="kiosk-9.not-a-token-central-knows", size=info.size_bytes,
                        retry=Retry(attempts=2, first_s=0.01, max_s=0.02))
    await proxy.start()
    try:
        with pytest.raises(AssertionError):
            await read_as_rauc(proxy.url)
    finally:
        await proxy.close()
    assert "refused this kiosk's token" in proxy.problem
