"""What the scale benchmark's clients connect to: one central, or two behind HAProxy with PostgreSQL and Redis.

Both have the same shape: ``prepare()`` gives the database to seed before any central starts, ``start()`` starts
and waits until the front answers, ``url`` is what kiosks and consoles connect to, ``pid`` the central that serves
them (its CPU and memory are the figures), ``extra_pids`` the other servers on the path, ``stop()`` ends all.

Two centrals are started as tests/central/test_failover.py and ``./build.sh bench --only failover`` start them
(tests/servers.py, tests/central/central_processes.py): active/standby (docs/decisions/0008-several-centrals.md),
so the first leads and serves every socket and the standby only answers HAProxy's health checks.
"""
from __future__ import annotations

import asyncio
import re
import subprocess
from pathlib import Path

import aiohttp

from bench._central import Server
from bench._common import BenchError, note

PROXY_MARGIN = 256   # HAProxy's connections besides the clients': health checks, the probe
STALL = re.compile(r"the event loop was stalled ([0-9.]+) s")


class OneCentral:
    """One ``python -m central serve`` on a temporary SQLite database."""

    description = "one central process"

    def __init__(self, tmp: Path):
        self.server = Server(tmp)
        self.url = self.server.url

    async def prepare(self) -> str:
        return self.server.database_url

    async def start(self) -> None:
        self.server.start()
        async with aiohttp.ClientSession() as probe:
            await self.server.wait_ready(probe)

    @property
    def pid(self) -> int:
        return self.server.pid

    @property
    def extra_pids(self) -> dict[str, int]:
        return {}

    def gone(self) -> str | None:
        """Why the serving central is no longer there, or None while it runs."""
        code = self.server.proc.poll()
        return None if code is None else f"central exited (code {code})"

    def problem_count(self) -> int:
        return self.server.problem_count()

    def log_problems(self) -> list[str]:
        return self.server.log_problems()

    async def stop(self) -> None:
        note(f"central stopped (exit code {self.server.stop()})")


class TwoCentrals:
    """PostgreSQL, Redis, two centrals (the first leads, the second stands by) and HAProxy in front."""

    description = "two central processes (one leading, one relaying its half of the sockets to it) behind HAProxy, PostgreSQL and Redis"

    def __init__(self, tmp: Path, sockets: int):
        self.tmp, self.sockets = tmp, sockets
        self.pg = self.redis = self.haproxy = None
        self.database_url: str | None = None
        self.centrals: list = []
        self.url = ""

    async def prepare(self) -> str:
        from tests import servers

        try:
            self.pg = await asyncio.to_thread(servers.start_postgresql)
            self.redis = await asyncio.to_thread(servers.start_redis)
        except servers.ServerUnavailable as exc:
            raise BenchError(str(exc)) from None
        self.database_url = await self.pg.create_database()
        return self.database_url

    async def start(self) -> None:
        from tests import servers
        from tests.central.central_processes import CentralProcess
        from tests.central.failover_scenario import until_leading

        extra = f'redis_url = "{self.redis.url}"\n'
        self.centrals = [CentralProcess(self.tmp, name=f"central-{n}", database_url=self.database_url, extra=extra)
                         for n in "ab"]
        async with aiohttp.ClientSession() as probe:
            try:
                await self.centrals[0].start(probe, "/health/leader", (200,))
                await self.centrals[1].start(probe, "/health/ws", (200,))  # it relays to the leader
            except (AssertionError, TimeoutError):
                raise BenchError(f"a central did not start as leader and standby; see {self.tmp}/central-*.log "
                                 f"(--scale-keep-tmp keeps them)") from None
            try:
                self.haproxy = await asyncio.to_thread(
                    servers.start_haproxy, [("a", self.centrals[0].port), ("b", self.centrals[1].port)],
                    maxconn=self.sockets + PROXY_MARGIN)
            except servers.ServerUnavailable as exc:
                raise BenchError(str(exc)) from None
            self.url = self.haproxy.url
            await until_leading(probe, self.url, 10)
            # HAProxy 2.6 counts the standby up until its first checks fail: wait until pages go to the leader
            # only and sockets to both (the standby relays its share to the leader), so no client is closed by a
            # central that cannot serve it yet (1013) and counted as a failure.
            async with asyncio.timeout(10):
                while True:
                    if await asyncio.to_thread(self.haproxy.servers_up) == {"a"} and \
                            await asyncio.to_thread(self.haproxy.servers_up, "sockets") == {"a", "b"}:
                        break
                    await asyncio.sleep(0.05)

    @property
    def pid(self) -> int:
        return self.centrals[0].proc.pid

    @property
    def extra_pids(self) -> dict[str, int]:
        return {"haproxy": self.haproxy.process.pid, "redis": self.redis.process.pid,
                "standby": self.centrals[1].proc.pid}

    def gone(self) -> str | None:
        """Why the leading central no longer serves, or None while it runs. A leader whose term ended (its
        event loop stalled past lease_stall_limit_s, or Redis unreachable for the lease, 0008) exits with 75."""
        leader = self.centrals[0]
        code = leader.proc.poll()
        if code is None:
            return None
        why = [line for line in self._problems(("ERROR",)) if "stopped leading" in line]
        return f"the leading central exited (code {code})" + (f": {why[0].split(': ', 2)[-1]}" if why else "")

    def _problems(self, starts: tuple[str, ...]) -> list[str]:
        out = []
        for central in self.centrals:
            try:
                text = central.log.read_text(errors="replace")
            except OSError:
                continue
            out += [f"{central.name}: {line}" for line in text.splitlines() if line.startswith(starts)]
        return out

    def problem_count(self) -> int:
        return len(self._problems(("WARNING", "ERROR", "CRITICAL")))

    def log_problems(self) -> list[str]:
        return self._problems(("WARNING", "ERROR", "CRITICAL", "Traceback"))

    def longest_stall_s(self) -> float:
        """The longest stall of the leader's event loop it logged (central/cluster/keeper.py logs those over
        a second), or 0: how near the leader came to handing its lease over (lease_stall_limit_s)."""
        try:
            text = self.centrals[0].log.read_text(errors="replace")
        except OSError:
            return 0.0
        return max((float(m) for m in STALL.findall(text)), default=0.0)

    async def stop(self) -> None:
        if self.haproxy is not None:
            self.haproxy.stop()
        for central in self.centrals:
            if central.proc is not None and central.proc.poll() is None:
                central.proc.terminate()
                try:
                    code = await asyncio.to_thread(central.proc.wait, 15)
                except subprocess.TimeoutExpired:
                    central.kill_if_running()
                    code = central.proc.returncode
                note(f"{central.name} stopped (exit code {code})")
        if self.pg is not None and self.database_url is not None:
            try:
                await self.pg.drop_database(self.database_url.rsplit("/", 1)[1])
            except Exception as exc:  # the server is stopped next; its temporary files go with it
                note(f"could not drop the benchmark's database: {exc}")
        for server in (self.redis, self.pg):
            if server is not None:
                server.stop()
