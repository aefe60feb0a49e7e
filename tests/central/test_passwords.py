"""Password checks run beside the event loop, a bounded number at a time."""
from __future__ import annotations

import asyncio
import re
import threading

import aiohttp
import pytest
from argon2.exceptions import VerifyMismatchError

from central import passwords

SAFETY_S = 5.0  # a check that is never released ends by itself, so a failing test cannot hang


class BlockingHasher:
    """Stands in for argon2: each check runs until the test releases it."""

    def __init__(self) -> None:
        self.started = threading.Semaphore(0)
        self.release = threading.Event()
        self.finished = threading.Event()
        self.running = self.most_at_once = 0
        self._lock = threading.Lock()

    def verify(self, _stored: str, _password: str) -> bool:
        with self._lock:
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
        self.started.release()
        self.release.wait(SAFETY_S)
        with self._lock:
            self.running -= 1
        self.finished.set()
        raise VerifyMismatchError

    def check_needs_rehash(self, _stored: str) -> bool:
        return False


async def test_a_kiosk_ping_is_answered_while_a_password_is_being_checked(central, monkeypatch):
    kiosk = await central.kiosk()
    hasher = BlockingHasher()
    monkeypatch.setattr(passwords, "_hasher", hasher)
    browser = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    central.sessions.append(browser)
    page = await (await browser.get(central.url + "/login")).text()
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page)[1]
    login = asyncio.create_task(browser.post(central.url + "/login", allow_redirects=False, data={
        "username": "sachbearbeiterin", "password": "a wrong guess", "csrf_token": csrf}))
    try:
        assert await asyncio.to_thread(hasher.started.acquire, timeout=SAFETY_S), "the check never started"
        await kiosk.send(type="ping")
        assert (await kiosk.recv("pong", timeout=SAFETY_S * 2))["type"] == "pong"
        # Had the check run on the event loop, nothing could have answered before it ended.
        assert not hasher.finished.is_set(), "the ping was answered only after the password check"
    finally:
        hasher.release.set()
    assert (await login).status == 401


async def test_checks_run_a_few_at_a_time_and_a_flood_is_turned_away():
    from central.passwords import PasswordsBusy, PasswordWorkers

    hasher = BlockingHasher()
    workers = PasswordWorkers(workers=2, max_waiting=3)
    original = passwords._hasher
    passwords._hasher = hasher
    try:
        checks = [asyncio.ensure_future(workers.verify("stored", "guess")) for _ in range(5)]
        await asyncio.sleep(0)
        with pytest.raises(PasswordsBusy):
            await workers.verify("stored", "one too many")
        for _ in range(2):
            assert await asyncio.to_thread(hasher.started.acquire, timeout=SAFETY_S)
        hasher.release.set()
        assert await asyncio.gather(*checks) == [False] * 5
        assert hasher.most_at_once == 2
        assert await workers.verify("stored", "room again") is False  # the queue drained
    finally:
        passwords._hasher = original
        workers.close()


async def test_hashing_and_checking_round_trip():
    from central.passwords import PasswordWorkers

    workers = PasswordWorkers(workers=1)
    try:
        stored = await workers.hash("correct horse 1")
        assert await workers.verify(stored, "correct horse 1") is True
        assert await workers.verify(stored, "correct horse 2") is False
        assert await workers.verify(None, "correct horse 1") is False
        with pytest.raises(ValueError, match="at least 10"):
            await workers.hash("short")
    finally:
        workers.close()
