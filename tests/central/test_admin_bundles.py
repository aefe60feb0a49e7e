"""The admin page /admin/bundles: upload (streamed, checked, refused with the reason), list, remove, audit."""
from __future__ import annotations

import os
import re

import aiohttp
import pytest
import pytest_asyncio

from central.config import Config
from tests.central.bundle_fixtures import changed, make
from tests.central.conftest import running_central

CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')
MAX_MB = 1


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    return make(tmp_path_factory.mktemp("admin-bundles"))


@pytest_asyncio.fixture
async def central(tmp_path, made):
    config = Config(database_url=f"sqlite:///{tmp_path}/central.db", secure_cookies=False,
                    update_keyring=str(made.keys.ca_pem), bundle_max_mb=MAX_MB)
    async with running_central(config) as c:
        yield c


async def admin(central, language: str = "en") -> aiohttp.ClientSession:
    session = await central.login(central.credentials["admin_user"], central.credentials["admin_password"])
    session.cookie_jar.update_cookies({"ak_lang": language})
    return session


async def upload(central, session, data: bytes, filename: str = "update.raucb", csrf: str | None = None):
    async with session.get(central.url + "/admin/bundles") as r:
        token = CSRF_RE.search(await r.text())[1]
    form = aiohttp.FormData()
    form.add_field("csrf_token", token if csrf is None else csrf)
    form.add_field("bundle", data, filename=filename, content_type="application/octet-stream")
    async with session.post(central.url + "/admin/bundles/upload", data=form, allow_redirects=False) as r:
        return r.status, r.headers, await r.text()


def kept_files(central) -> list[str]:
    directory = central.app["bundles"].directory
    return sorted(os.listdir(directory)) if directory.exists() else []


async def test_a_good_bundle_is_uploaded_listed_and_removed(central, made):
    session = await admin(central)
    status, headers, _ = await upload(central, session, made.good.read_bytes())
    assert status == 303 and headers["Location"] == "/admin/bundles?done=bundle-added"
    async with session.get(central.url + "/admin/bundles?done=bundle-added") as r:
        page = await r.text()
    assert "The bundle was checked and added" in page and "1.1.0+good" in page and "city update signing" in page
    assert '<a href="/admin/updates">Updates</a>' in page  # where it is rolled out
    [info] = await central.app["bundles"].list()
    assert info.version == "1.1.0+good" and info.uploaded_by == central.credentials["admin_user"]
    assert kept_files(central) == [f"{info.sha256}.raucb"]
    async with session.get(central.url + "/admin/bundles") as r:
        token = CSRF_RE.search(await r.text())[1]
    async with session.post(f"{central.url}/admin/bundles/{info.id}/remove", data={"csrf_token": token},
                            allow_redirects=False) as r:
        assert r.status == 303
    assert await central.app["bundles"].list() == [] and kept_files(central) == []
    entries = await central.db.audit.recent()
    assert [(e.action, e.target, e.staff_name) for e in entries] == [
        ("bundle.remove", f"bundle:{info.id}", central.credentials["admin_user"]),
        ("bundle.add", f"bundle:{info.id}", central.credentials["admin_user"])]
    async with session.get(central.url + "/admin/audit") as r:
        assert "Update bundle added" in await r.text()


@pytest.mark.parametrize("case, fault, words", [
    ("other_key", "signature_invalid", "not signed with a key of central&#39;s update keyring"),
    ("elsewhere", "incompatible", "amtsklingel-pc-x86"),
    ("changed_payload", "bundle_corrupt", "does not match its signed hash"),
    ("changed_signature", "signature_invalid", "signature"),
    ("truncated", "bundle_corrupt", "cut short"),
    ("not_a_bundle", "bundle_corrupt", "not a RAUC bundle"),
    ("empty", "bundle_corrupt", "the file is empty"),
])
async def test_a_refused_upload_shows_why_and_keeps_nothing(central, made, case, fault, words):
    good = made.good.read_bytes()
    data = {"other_key": made.other_key.read_bytes(), "elsewhere": made.elsewhere.read_bytes(),
            "changed_payload": changed(good, 9000), "changed_signature": changed(good, -8 - 5),
            "truncated": good[:-4096], "not_a_bundle": b"<html>not a bundle</html>" * 1000, "empty": b""}[case]
    status, _, page = await upload(central, await admin(central), data)
    assert status == 400
    assert f'data-fault="{fault}"' in page and words in page
    assert "The bundle was refused and not kept." in page
    assert await central.app["bundles"].list() == [] and kept_files(central) == []
    assert await central.db.audit.recent() == []


async def test_an_upload_larger_than_the_cap_is_refused(central):
    status, _, page = await upload(central, await admin(central), os.urandom(MAX_MB * 1024 * 1024 + 200_000))
    assert status == 413 and "larger than central takes (1 MB, bundle_max_mb" in page
    assert kept_files(central) == []


async def test_an_upload_larger_than_the_cap_without_a_length_is_cut_off(central):
    """Sent in chunks (no Content-Length): central stops at the cap, not at the end of the stream."""
    session = await admin(central)
    async with session.get(central.url + "/admin/bundles") as r:
        token = CSRF_RE.search(await r.text())[1]

    async def chunks():
        yield b"--b\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\n" + token.encode() + b"\r\n"
        yield b"--b\r\nContent-Disposition: form-data; name=\"bundle\"; filename=\"x.raucb\"\r\n\r\n"
        for _ in range(3 * MAX_MB * 4):
            yield os.urandom(256 * 1024)
        yield b"\r\n--b--\r\n"

    try:
        async with session.post(central.url + "/admin/bundles/upload", data=chunks(), allow_redirects=False,
                                headers={"Content-Type": "multipart/form-data; boundary=b"}) as r:
            assert r.status == 413
    except aiohttp.ClientError:
        pass  # central answered and closed while the rest was still being sent
    assert kept_files(central) == [] and await central.app["bundles"].list() == []


async def test_an_upload_without_the_form_token_is_refused(central, made):
    status, _, _ = await upload(central, await admin(central), made.good.read_bytes(), csrf="forged")
    assert status == 403 and kept_files(central) == []


async def test_the_page_in_german(central, made):
    session = await admin(central, "de")
    status, _, page = await upload(central, session, made.other_key.read_bytes())
    assert status == 400 and "Das Bundle wurde abgelehnt und nicht aufgenommen." in page
    assert "nicht mit dem Update-Schlüssel der Stadt signiert" in page
    await central.app["bundles"].add_file(made.good)
    async with session.get(central.url + "/admin/bundles") as r:
        page = await r.text()
    assert "Bundle hochladen" in page and "über die Kommandozeile" in page


async def test_without_a_keyring_the_page_says_what_to_set(tmp_path, made):
    config = Config(database_url=f"sqlite:///{tmp_path}/central.db", secure_cookies=False)
    async with running_central(config) as c:
        session = await admin(c)
        async with session.get(c.url + "/admin/bundles") as r:
            assert "set update_keyring" in await r.text()
        status, _, page = await upload(c, session, made.good.read_bytes())
        assert status == 409 and "set update_keyring" in page


async def test_kiosks_are_served_while_a_bundle_is_being_checked(central, made, monkeypatch):
    """The check reads and hashes the whole file: it runs in a worker thread, not on the event loop."""
    import asyncio
    import threading

    from central.updates import library

    started, release, finished = threading.Event(), threading.Event(), threading.Event()
    real_check = library.check_bundle

    def held_check(*args):
        started.set()
        release.wait(5)  # bounded, so a failing test cannot hang
        try:
            return real_check(*args)
        finally:
            finished.set()

    monkeypatch.setattr(library, "check_bundle", held_check)
    kiosk = await central.kiosk()
    adding = asyncio.create_task(central.app["bundles"].add_file(made.good))
    try:
        assert await asyncio.to_thread(started.wait, 5), "the check never started"
        await kiosk.send(type="ping")
        assert (await kiosk.recv("pong", timeout=10))["type"] == "pong"
        # Had the check run on the event loop, nothing could have answered before it ended.
        assert not finished.is_set(), "the ping was answered only after the check"
    finally:
        release.set()
    assert (await adding).version == "1.1.0+good"
