"""Kiosks fetch bundles from central with their token: whole, by byte range, resumed after a cut."""
from __future__ import annotations

import asyncio
import dataclasses
import hashlib

import aiohttp
import pytest
import pytest_asyncio

from protocol.updates import UpdateOffer
from tests.central.conftest import running_central, update_config
from tests.rauc_bundles import make_bundle, make_keys, make_stand_in_root


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """A bundle of a few MB (a root with incompressible content), larger than the sockets' buffers."""
    directory = tmp_path_factory.mktemp("download")
    keys = make_keys(directory / "keys")
    root = make_stand_in_root(directory, "2.0.0", random_mb=3)
    return keys, make_bundle(directory, keys, "2.0.0+big", root=root)


@pytest_asyncio.fixture
async def central(tmp_path, made):
    keys, _ = made
    config = update_config(tmp_path, keys.ca_pem)
    async with running_central(config) as c:
        yield c


@dataclasses.dataclass
class Served:
    url: str
    data: bytes
    sha256: str
    token: str


@pytest_asyncio.fixture
async def served(central, made):
    _, bundle = made
    info = await central.app["bundles"].add_file(bundle)
    data = bundle.read_bytes()
    assert info.sha256 == hashlib.sha256(data).hexdigest() and info.size_bytes == len(data)
    # What the rollout offers kiosks from it is a valid update.offer.
    UpdateOffer(type="update.offer", bundle_id=info.id, version=info.version, size_bytes=info.size_bytes,
                sha256=info.sha256, path=info.path)
    _, token = await central.db.create_kiosk("Bibliothek")
    return Served(central.url + info.path, data, info.sha256, token)


async def fetch(central, served, method: str = "GET", token: str | None = None, **headers):
    auth = {"Authorization": f"Bearer {token or served.token}"} if token != "" else {}
    async with central.session.request(method, served.url, headers={**auth, **headers}) as r:
        return r.status, r.headers, await r.read()


async def test_the_whole_bundle_with_its_etag(central, served):
    status, headers, body = await fetch(central, served)
    assert status == 200 and body == served.data
    assert headers["ETag"] == f'"{served.sha256}"' and headers["Accept-Ranges"] == "bytes"
    assert int(headers["Content-Length"]) == len(served.data)
    status, headers, body = await fetch(central, served, "HEAD")
    assert status == 200 and body == b"" and int(headers["Content-Length"]) == len(served.data)


async def test_byte_ranges(central, served):
    size = len(served.data)
    for header, first, last in (("bytes=0-99", 0, 99), ("bytes=1000-", 1000, size - 1),
                                ("bytes=-50", size - 50, size - 1), (f"bytes=10-{size + 99}", 10, size - 1)):
        status, headers, body = await fetch(central, served, Range=header)
        assert status == 206, header
        assert headers["Content-Range"] == f"bytes {first}-{last}/{size}"
        assert body == served.data[first:last + 1]
    status, headers, _ = await fetch(central, served, "HEAD", Range="bytes=5-9")
    assert status == 206 and headers["Content-Length"] == "5"
    # Several ranges at once, or a range that makes no sense, are ignored (RFC 9110): the whole file.
    for header in ("bytes=0-1,5-6", "bytes=9-3", "lines=1-2"):
        status, _, body = await fetch(central, served, Range=header)
        assert status == 200 and body == served.data, header


async def test_a_range_past_the_end_is_416(central, served):
    status, headers, body = await fetch(central, served, Range=f"bytes={len(served.data)}-")
    assert status == 416 and headers["Content-Range"] == f"bytes */{len(served.data)}" and body == b""


async def test_if_range_with_another_etag_gives_the_whole_file(central, served):
    status, _, body = await fetch(central, served, Range="bytes=100-", **{"If-Range": f'"{served.sha256}"'})
    assert status == 206 and body == served.data[100:]
    status, _, body = await fetch(central, served, Range="bytes=100-", **{"If-Range": f'"{"0" * 64}"'})
    assert status == 200 and body == served.data
    # A date there is not this file's validator either: the whole file, never a range of another one.
    status, _, body = await fetch(central, served, Range="bytes=100-", **{"If-Range": "Fri, 04 Dec 2026 02:00:00 GMT"})
    assert status == 200 and body == served.data


async def test_only_kiosks_with_a_valid_token_may_fetch(central, served):
    assert (await fetch(central, served, token=""))[0] == 401
    assert (await fetch(central, served, token="1.not-the-token"))[0] == 401
    kiosk_id = int(served.token.split(".")[0])
    assert (await fetch(central, served))[0] == 200
    await central.db.revoke_kiosk(kiosk_id)
    status, headers, _ = await fetch(central, served)
    assert status == 401 and headers["WWW-Authenticate"].startswith("Bearer")


async def test_an_unknown_bundle_or_name_is_404(central, served):
    auth = {"Authorization": f"Bearer {served.token}"}
    for url in (served.url.replace("/bundles/1/", "/bundles/99/"), served.url.replace("amtsklingel-", "other-")):
        async with central.session.get(url, headers=auth) as r:
            assert r.status == 404, url


async def test_a_download_cut_in_the_middle_resumes_to_the_identical_file(central, served):
    """The connection drops after part of the body; a Range request for the rest (If-Range: the ETag)
    completes it, and the pieces together are the bundle, byte for byte."""
    host, port = central.url.removeprefix("http://").split(":")
    path = served.url.removeprefix(central.url)
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {served.token}\r\n\r\n".encode())
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    first_part = await reader.readexactly(len(served.data) // 3)
    writer.transport.abort()  # cut: no orderly close, as when a line drops
    etag = next(line.split(b":", 1)[1].strip() for line in head.split(b"\r\n") if line.lower().startswith(b"etag:"))
    status, headers, rest = await fetch(central, served, Range=f"bytes={len(first_part)}-",
                                        **{"If-Range": etag.decode()})
    assert status == 206
    assert hashlib.sha256(first_part + rest).hexdigest() == served.sha256
    # Central keeps serving after the cut.
    assert (await fetch(central, served, Range="bytes=0-0"))[2] == served.data[:1]


async def test_the_body_is_sent_without_reading_the_file_into_memory(central, served, monkeypatch):
    """sendfile: the kernel copies the file to the socket; aiohttp's write (which would hold the
    bytes in central's memory) is not used for the body."""
    written = []
    original = aiohttp.web.StreamResponse.write

    async def counting_write(self, data):
        written.append(len(data))
        return await original(self, data)

    monkeypatch.setattr(aiohttp.web.StreamResponse, "write", counting_write)
    status, _, body = await fetch(central, served)
    assert status == 200 and body == served.data and sum(written) == 0


async def test_over_tls_without_sendfile_the_bytes_are_the_same(tmp_path, made):
    """Central serving TLS itself (no reverse proxy): the kernel cannot sendfile into TLS, so the file
    goes out in chunks; whole and ranged downloads are the same bytes."""
    import ssl

    from tests.tls import make_ca

    keys, bundle = made
    authority = make_ca("download test CA")
    config = update_config(tmp_path, keys.ca_pem)
    async with running_central(config, authority.server_context(tmp_path)) as c:
        info = await c.app["bundles"].add_file(bundle)
        _, token = await c.db.create_kiosk("Rathaus")
        client = ssl.create_default_context(cadata=authority.pem)
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=client)) as https:
            auth = {"Authorization": f"Bearer {token}"}
            async with https.get(c.url + info.path, headers=auth) as r:
                assert r.status == 200 and hashlib.sha256(await r.read()).hexdigest() == info.sha256
            async with https.get(c.url + info.path, headers={**auth, "Range": "bytes=1000-200999"}) as r:
                assert r.status == 206 and await r.read() == bundle.read_bytes()[1000:201000]
