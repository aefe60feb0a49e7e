"""The loopback server RAUC streams from: Range answers, resume after a cut, bandwidth cap, bad answers."""
from __future__ import annotations

import asyncio

import aiohttp
import pytest

from appliance.update.fetch import BundleProxy, Retry, TokenBucket
from tests.appliance.bundle_server import PATH, TOKEN, BundleServer, serving

DATA = bytes((i * 31 + i // 977) % 256 for i in range(300_000))
FAST = Retry(attempts=3, first_s=0.01, max_s=0.05)


async def proxy_for(server: BundleServer, **kwargs) -> BundleProxy:
    proxy = BundleProxy(server.url + PATH, token=kwargs.pop("token", TOKEN), size=kwargs.pop("size", len(DATA)),
                        retry=kwargs.pop("retry", FAST), **kwargs)
    await proxy.start()
    return proxy


async def read_as_rauc(url: str, block: int = 65_536) -> bytes:
    """The first four bytes for the size (RAUC 1.13's src/nbd.c: "get the sqsh magic"), then blocks by Range."""
    async with aiohttp.ClientSession() as http:
        async with http.get(url, headers={"Range": "bytes=0-3"}) as r:
            assert r.status == 206 and r.headers["Accept-Ranges"] == "bytes"
            size = int(r.headers["Content-Range"].rsplit("/", 1)[1])
            assert len(await r.read()) == 4
        data = bytearray()
        while len(data) < size:
            last = min(size, len(data) + block) - 1
            async with http.get(url, headers={"Range": f"bytes={len(data)}-{last}"}) as r:
                assert r.status == 206
                assert r.headers["Content-Range"] == f"bytes {len(data)}-{last}/{size}"
                data += await r.read()
        return bytes(data)


async def test_a_connection_cut_in_the_middle_is_resumed_and_rauc_reads_the_file_unchanged():
    async with serving(BundleServer(DATA, cut_at=[100_000, 100_001, 250_000])) as server:
        proxy = await proxy_for(server)
        try:
            assert await read_as_rauc(proxy.url) == DATA
            async with aiohttp.ClientSession() as http:  # one request for everything, cut and resumed inside
                server.cut_at = [150_000]
                async with http.get(proxy.url) as r:
                    assert r.status == 200 and await r.read() == DATA
        finally:
            await proxy.close()
    starts = {int(rng[6:].split("-")[0]) for method, rng, _ in server.requests if method == "GET" and rng}
    assert {100_000, 250_000, 150_000} <= starts  # each cut taken up again from the byte where it stopped
    assert all(if_range == '"v1"' for method, _, if_range in server.requests if method == "GET")
    assert proxy.problem is None and proxy.downloaded_bytes == 2 * len(DATA) + 4  # and the first look


async def test_ranges_rauc_may_ask_for():
    async with serving(BundleServer(DATA)) as server:
        proxy = await proxy_for(server)
        try:
            async with aiohttp.ClientSession() as http:
                async with http.head(proxy.url) as r:
                    assert r.status == 200 and int(r.headers["Content-Length"]) == len(DATA)
                async with http.get(proxy.url, headers={"Range": "bytes=-100"}) as r:
                    assert r.status == 206 and await r.read() == DATA[-100:]
                async with http.get(proxy.url, headers={"Range": "bytes=299990-"}) as r:
                    assert await r.read() == DATA[299_990:]
                async with http.get(proxy.url, headers={"Range": f"bytes={len(DATA)}-"}) as r:
                    assert r.status == 416 and r.headers["Content-Range"] == f"bytes */{len(DATA)}"
                async with http.get(proxy.url.replace(".raucb", "-other.raucb")) as r:
                    assert r.status == 404
        finally:
            await proxy.close()


@pytest.mark.parametrize(("setup", "problem"), [
    (lambda s: setattr(s, "status", 404), "central does not have this bundle (404)"),
    (lambda s: setattr(s, "status", 401), "central refused this kiosk's token"),
    (lambda s: setattr(s, "claimed_size", len(DATA) + 1), f"central's bundle is {len(DATA) + 1} bytes"),
])
async def test_central_refusing_or_describing_another_file_is_a_clear_problem(setup, problem):
    server = BundleServer(DATA)
    setup(server)
    async with serving(server):
        proxy = await proxy_for(server)
        try:
            async with aiohttp.ClientSession() as http:
                async with http.head(proxy.url) as r:
                    assert r.status == 502
                async with http.get(proxy.url, headers={"Range": "bytes=0-99"}) as r:
                    assert r.status == 502  # RAUC's install fails; the agent reports the proxy's problem
        finally:
            await proxy.close()
    assert problem in proxy.problem


async def test_a_bundle_changed_on_central_during_the_download_is_noticed():
    async with serving(BundleServer(DATA)) as server:
        proxy = await proxy_for(server)
        try:
            async with aiohttp.ClientSession() as http:
                async with http.get(proxy.url, headers={"Range": "bytes=0-999"}) as r:
                    assert await r.read() == DATA[:1000]
                server.change(DATA[::-1])
                with pytest.raises(aiohttp.ClientError):
                    async with http.get(proxy.url, headers={"Range": "bytes=1000-1999"}) as r:
                        await r.read()  # cut short: RAUC never takes a piece of the other file
        finally:
            await proxy.close()
    assert "changed during the download" in proxy.problem


async def test_central_gone_for_good_ends_after_a_bounded_number_of_attempts():
    async with serving(BundleServer(DATA)) as server:
        proxy = await proxy_for(server)
        try:
            async with aiohttp.ClientSession() as http:
                async with http.head(proxy.url) as r:
                    assert r.status == 200
                server.cut_at = [10] * 10  # every attempt dies after a few bytes: progress, so attempts go on
                server.status = 503        # then central is down
                with pytest.raises(aiohttp.ClientError):
                    async with http.get(proxy.url) as r:
                        await r.read()
        finally:
            await proxy.close()
    assert "could not be reached after 3 attempts" in proxy.problem


async def test_the_token_bucket_holds_the_rate():
    """With a fake clock: 1 MB through a 100 kB/s bucket waits 10 s less the burst."""
    now = [0.0]

    async def sleep(seconds: float) -> None:
        now[0] += seconds

    bucket = TokenBucket(rate=100_000, burst=25_000, clock=lambda: now[0], sleep=sleep)
    for _ in range(64):
        await bucket.take(16_384)
    assert 64 * 16_384 / 100_000 - 0.25 - 0.01 <= now[0] <= 64 * 16_384 / 100_000 + 0.1
    # and a cap on the real proxy: bytes arrive, and the bucket is in the path
    async with serving(BundleServer(DATA)) as server:
        proxy = await proxy_for(server, max_kbit_s=8_000)
        try:
            assert await read_as_rauc(proxy.url) == DATA
        finally:
            await proxy.close()
    assert proxy.bucket.rate == 1_000_000


async def test_a_plain_http_central_is_refused_unless_it_is_on_this_machine():
    with pytest.raises(ValueError, match="https"):
        BundleProxy("http://central.example.org" + PATH, token=TOKEN, size=10)
    await asyncio.sleep(0)


async def test_rauc_hanging_up_early_is_not_a_cut_line_to_resume():
    big = DATA * 30  # more than the sockets' buffers hold: the proxy is still writing when RAUC hangs up
    async with serving(BundleServer(big)) as server:
        proxy = await proxy_for(server, size=len(big), retry=Retry(attempts=3, first_s=5, max_s=5))
        try:
            async with aiohttp.ClientSession() as http:
                async with http.get(proxy.url) as r:
                    await r.content.read(1000)  # and gone, as RAUC once it has what it needs
                await asyncio.sleep(0.3)
            assert await read_as_rauc(proxy.url, block=1_000_000) == big
        finally:
            await proxy.close()
    assert proxy.resumes == 0 and proxy.problem is None
