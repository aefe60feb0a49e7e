"""Central as a separate process for the benchmarks: a temporary configuration and SQLite
database on 127.0.0.1, demo data, extra kiosks and clerks, start, readiness, stop, log."""
from __future__ import annotations

import asyncio
import json
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import aiohttp

from bench._common import BenchError

ROOT = Path(__file__).resolve().parents[1]
DEPARTMENT = "buergerbuero"
CLERK_PASSWORD = "bench-clerk-password"  # only ever on 127.0.0.1, in a throw-away database
START_TIMEOUT_S = 30.0      # central process up and answering
CLI_TIMEOUT_S = 60.0        # python -m central demo-data


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, tmp: Path, extra_config: str = ""):
        self.tmp = tmp
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.database_url = f"sqlite:///{tmp}/central.db"
        self.config = tmp / "central.toml"
        self.config.write_text(
            f"database_url = {json.dumps(self.database_url)}\n"
            f'host = "127.0.0.1"\nport = {self.port}\nsecure_cookies = false\n{extra_config}', encoding="utf-8")
        self.log_path = tmp / "central.log"
        self.proc: subprocess.Popen | None = None

    def _command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "central", "--config", str(self.config), *args]

    def demo_data(self) -> dict:
        done = subprocess.run(self._command("demo-data"), cwd=ROOT, capture_output=True, text=True,
                              timeout=CLI_TIMEOUT_S, stdin=subprocess.DEVNULL)
        if done.returncode != 0:
            raise BenchError(f"demo-data failed ({done.returncode}): {done.stderr[-2000:]}")
        return json.loads(done.stdout.strip().splitlines()[-1])

    def start(self) -> None:
        with open(self.log_path, "ab") as log:  # a file, not a pipe; appended to across restarts
            self.proc = subprocess.Popen(self._command("serve"), cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    async def wait_ready(self, session: aiohttp.ClientSession) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + START_TIMEOUT_S
        while loop.time() < deadline:
            if self.proc.poll() is not None:
                raise BenchError(f"central exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                async with session.get(self.url + "/login", timeout=aiohttp.ClientTimeout(total=2)) as r:
                    if r.status == 200:
                        return
            except (aiohttp.ClientError, TimeoutError):
                pass
            await asyncio.sleep(0.1)
        raise BenchError(f"central did not answer on {self.url} within {START_TIMEOUT_S:.0f} s:\n{self.log_tail()}")

    def stop(self) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)  # aiohttp shuts down gracefully on SIGTERM
        try:
            return self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(timeout=5)

    def problem_count(self) -> int:
        return len(self.log_problems(headline_only=True))

    def log_problems(self, headline_only: bool = False) -> list[str]:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return []
        starts = ("WARNING", "ERROR", "CRITICAL") if headline_only else ("WARNING", "ERROR", "CRITICAL", "Traceback")
        return [line for line in text.splitlines() if line.startswith(starts)]


async def add_kiosks_and_clerks(database_url: str, kiosks: int, clerks: int) -> tuple[list[str], list[str]]:
    """Extra kiosks and clerks of DEPARTMENT, through central's storage API, before central starts."""
    from central import passwords
    from central.storage import Database

    db = await Database.open(database_url)
    try:
        tokens = [(await db.create_kiosk(f"Bench-Kiosk {i:03d}"))[1] for i in range(2, kiosks + 2)]
        password_hash = passwords.hash_password(CLERK_PASSWORD)  # one argon2 hash, reused: same password
        usernames = []
        for i in range(2, clerks + 2):
            username = f"bench-clerk-{i:03d}"
            await db.create_staff(username, f"Bench Clerk {i}", password_hash, "clerk", [DEPARTMENT])
            usernames.append(username)
    finally:
        await db.close()
    return tokens, usernames


async def login(session: aiohttp.ClientSession, url: str, username: str, password: str,
                headers: dict[str, str] | None = None) -> int:
    """Log in through the form as a browser does (CSRF cookie and field); the HTTP status of the POST."""
    async with session.get(url + "/login", headers=headers) as r:
        found = re.search(r'name="csrf_token" value="([^"]+)"', await r.text())
        if r.status != 200 or found is None:
            raise BenchError(f"GET /login: {r.status}, no csrf_token field")
    async with session.post(url + "/login", allow_redirects=False, headers=headers,
                            data={"username": username, "password": password, "csrf_token": found.group(1)}) as r:
        await r.read()
        return r.status


LOGIN_ATTEMPTS = 5


async def login_retrying(session: aiohttp.ClientSession, url: str, username: str, password: str) -> None:
    """:func:`login`, again after a pause when central answers 429 (its guessing brake counts the logins
    of one address in flight, and a benchmark logs in dozens of consoles from 127.0.0.1)."""
    for attempt in range(LOGIN_ATTEMPTS):
        if (status := await login(session, url, username, password)) == 302:
            return
        if status != 429 or attempt == LOGIN_ATTEMPTS - 1:
            raise BenchError(f"login of {username} failed: {status}")
        await asyncio.sleep(2.0 * (attempt + 1))
