"""The update agent: central's offer in, ``update.status`` out, and everything in between.

One bundle at a time. An offer waits for its window (window.py), then RAUC streams the bundle from
the loopback proxy (fetch.py) into the other slot; once it is there the agent waits for the window
again, says on the idle screen when the unit restarts, and restarts it for the trial (trial.py
settles it on the next start). Every step that a restart must know about is in the marker first
(marker.py). A withdrawn bundle is not installed, or, when already written, never booted.

The agent runs on the controller's event loop; it reads the controller's view and ``busy`` and
changes the view only through ``refresh`` (the idle screen's restart line).
"""
from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from appliance.call.tls import Trust
from appliance.controller.view import View
from appliance.service.power import PowerError
from appliance.update import marker as markers
from appliance.update.fetch import BundleProxy, Retry
from appliance.update.marker import Marker
from appliance.update.slots import InstallFailed, SlotBackend, SlotBusy, SlotError
from appliance.update.trial import Checks, after_boot
from appliance.update.window import window_open
from protocol import messages as m
from protocol import updates as u

log = logging.getLogger(__name__)

NOT_RETRIED = ("signature_invalid", "bundle_corrupt", "incompatible")  # central does not offer these again


@dataclass(frozen=True)
class AgentTimes:
    look_s: float = 30.0        # the window is looked at again this often (and on every change of the view)
    report_s: float = 30.0      # while downloading, a status at least this often (and every 5 %)
    announce_s: float = 60.0    # the idle screen shows the restart this long before it happens
    farewell_s: float = 1.0     # for the last status to reach central before the link goes down
    slot_attempts: int = 6      # asking the slots at start (rauc-service may still be starting) ...
    slot_retry_s: float = 10.0  # ... this far apart
    # RAUC's service busy with an installation an earlier start of the appliance began (its watchdog or
    # a crash restarted it): waited for this long at most, as long as an installation may take
    busy_wait_s: float = 6 * 3600.0
    retry: Retry = Retry()
    # A failed download or installation (not a refused bundle) is tried again this long after each
    # failure, without waiting for central to offer it again (it does so only on a reconnect).
    install_retry_s: tuple[float, ...] = (120.0, 600.0, 1800.0)


class UpdateAgent:
    def __init__(self, *, backend: SlotBackend | None, data_dir: Path, central_url: str,
                 token: Callable[[], str | None], send: Callable[[m.Message], Awaitable[None]], power,  # noqa: ANN001
                 controller, checks: Checks, image_version: str, trust: Trust | None = None,  # noqa: ANN001
                 online: Callable[[], bool] = lambda: True, times: AgentTimes = AgentTimes(),
                 clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)) -> None:
        self.backend, self.path = backend, Path(data_dir) / markers.MARKER_FILE
        self.central_url, self.token, self._send, self.power = central_url.rstrip("/"), token, send, power
        self.controller, self.checks, self.trust, self.online = controller, checks, trust or Trust(), online
        self.times, self.clock = times, clock
        self.running_version = image_version
        self.ready = asyncio.Event()          # after_boot is done: offers are taken from here on
        self.last: u.UpdateStatus | None = None
        self.reboots = 0
        self._job: asyncio.Task | None = None
        self._job_offer: u.UpdateOffer | None = None
        self._installing = False
        self._withdrawn: set[int] = set()
        self._changed = asyncio.Event()
        self._tasks: set[asyncio.Task] = set()

    # -- the controller's hooks --------------------------------------------------------------------
    async def handle(self, msg: m.Message) -> bool:
        # Which bundles are withdrawn changes here, in the order central's messages arrive.
        if isinstance(msg, u.UpdateOffer):
            self._withdrawn.discard(msg.bundle_id)
            self._spawn(self._offer(msg))
        elif isinstance(msg, u.UpdateWithdraw):
            self._withdrawn.add(msg.bundle_id)
            self._spawn(self._withdraw(msg.bundle_id))
        else:
            return False
        return True

    def view_changed(self, view: View) -> None:
        self._changed.set()

    def connected(self) -> None:
        """A new connection: central hears the last word again (an outcome it may have missed)."""
        self._spawn(self._resend())

    # -- start -------------------------------------------------------------------------------------
    async def run(self) -> None:
        """Settle the last boot (trial, commit, roll back); then offers are handled."""
        if self.backend is None:
            self.ready.set()
            return
        attempt, busy_s = 0, 0.0
        while True:
            try:
                status = await self.backend.status()
                self.running_version = status.booted_version or self.running_version
                marker, then = await after_boot(self.backend, self.path, self.checks)
                break
            except SlotBusy as exc:  # the last boot can only be settled once RAUC has finished writing
                if busy_s >= self.times.busy_wait_s:
                    log.error("update slots still busy after %.0f s: %s", busy_s, exc)
                    self.ready.set()
                    return
                if busy_s == 0:
                    log.warning("%s; settling the last update after that", exc)
                busy_s += self.times.slot_retry_s
            except SlotError as exc:  # e.g. rauc-service not up yet: a trial must not stay undecided
                attempt += 1
                log.error("update slots unusable (attempt %d of %d): %s", attempt, self.times.slot_attempts, exc)
                if attempt >= self.times.slot_attempts:
                    self.ready.set()
                    return
            await asyncio.sleep(self.times.slot_retry_s)
        if then == "reboot":
            # The new version failed its trial and the unit goes back: offers wait for the old one (this
            # one would answer "running" for the version that just failed).
            await self._reboot(marker, why=f"back to {marker.from_version}: {marker.version} failed its trial")
            return
        self.ready.set()
        if then == "report":
            if marker.step == "running":
                self.running_version = marker.version
            await self._report_marker(marker)
        elif then == "wait_to_reboot":
            offer = u.UpdateOffer(type="update.offer", bundle_id=marker.bundle_id, version=marker.version,
                                  size_bytes=1, sha256="0" * 64, path=f"/updates/bundles/{marker.bundle_id}/x.raucb",
                                  window=marker.window)  # what is left of it: its id, version and window
            await self._status(offer, "installed")
            self._start_job(offer, self._restart_when_allowed(offer, marker))

    # -- offers --------------------------------------------------------------------------------------
    async def _offer(self, offer: u.UpdateOffer) -> None:
        await self.ready.wait()
        if self.backend is None:
            log.warning("central offers %s, but this unit has no [update] backend", offer.version)
            await self._status(offer, "failed", fault="install_failed")
            return
        if offer.bundle_id in self._withdrawn:
            return
        if offer.version == self.running_version:
            await self._status(offer, "running")
            return
        current = self._job_offer
        if current is not None and self._job is not None and not self._job.done():
            if current.bundle_id == offer.bundle_id:
                if self.last is not None:
                    await self._report(self.last)
                return
            if self._installing:
                log.info("offer of %s waits: %s is being installed", offer.version, current.version)
                return
            self._job.cancel()
        done = markers.load(self.path)
        if done is not None and done.bundle_id == offer.bundle_id and done.outcome and (
                done.step == "rolled_back" or done.fault in NOT_RETRIED):
            await self._report_marker(done)  # the same answer again, never a second try
            return
        self._start_job(offer, self._install_then_restart(offer))

    def _start_job(self, offer: u.UpdateOffer, work: Awaitable[None]) -> None:
        self._job_offer = offer
        self._job = self._spawn(work)

    async def _install_then_restart(self, offer: u.UpdateOffer) -> None:
        await self._status(offer, "offered")
        for pause in (*self.times.install_retry_s, None):
            await self._until_window(offer.window)
            if offer.bundle_id in self._withdrawn:
                return
            installed = await self._install(offer)
            if installed is not None:
                break
            failed = markers.load(self.path)
            if pause is None or failed is None or failed.fault in NOT_RETRIED:
                return
            log.info("installing %s is tried again in %.0f s", offer.version, pause)
            await asyncio.sleep(pause)
        if offer.bundle_id in self._withdrawn:
            await self._give_up_slot(offer)
            return
        await self._restart_when_allowed(offer, installed)

    async def _install(self, offer: u.UpdateOffer) -> Marker | None:
        try:
            status = await self.backend.status()
        except SlotError as exc:  # e.g. RAUC busy: said and tried again, never a silent end of the offer
            log.error("update to %s cannot start: %s", offer.version, exc)
            failed = Marker(bundle_id=offer.bundle_id, version=offer.version, from_version=self.running_version,
                            from_slot=None, target_slot=None, step="failed", boot_id=self.backend.boot_id(),
                            window=offer.window, fault="install_failed")
            markers.save(self.path, failed)
            await self._report_marker(failed)
            return None
        marker = Marker(bundle_id=offer.bundle_id, version=offer.version, from_version=self.running_version,
                        from_slot=status.booted, target_slot=status.other, step="downloading",
                        boot_id=self.backend.boot_id(), window=offer.window)
        markers.save(self.path, marker)
        proxy = BundleProxy(self.central_url + offer.path, token=self.token(), size=offer.size_bytes,
                            trust=self.trust, max_kbit_s=offer.max_kbit_s, retry=self.times.retry)
        progress = {"pct": 0, "sent": -5}
        wake = asyncio.Event()

        def on_progress(pct: int) -> None:
            progress["pct"] = pct
            if pct >= progress["sent"] + 5:
                wake.set()

        async def reporter() -> None:
            """The one sender while RAUC works (every 5 % or ``report_s``), so statuses reach central in order."""
            while True:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.times.report_s):
                        await wake.wait()
                wake.clear()
                progress["sent"] = progress["pct"]
                await self._status(offer, "downloading", progress_pct=progress["pct"],
                                   downloaded_bytes=proxy.downloaded_bytes)

        self._installing = True
        reporting, failure = None, None
        try:
            url = await proxy.start()
            wake.set()  # 0 % at once
            reporting = asyncio.get_running_loop().create_task(reporter())
            log.info("installing %s (bundle %d) into slot %s", offer.version, offer.bundle_id, status.other)
            await self.backend.install(url, on_progress)
        except (InstallFailed, SlotError) as exc:
            failure = exc
        finally:
            self._installing = False
            if reporting is not None:
                reporting.cancel()
                await asyncio.gather(reporting, return_exceptions=True)
            await proxy.close()
        if failure is not None:
            fault = "download_failed" if proxy.problem else getattr(failure, "fault", "install_failed")
            log.error("update to %s failed (%s): %s", offer.version, fault, proxy.problem or failure)
            failed = marker.but(step="failed", fault=fault)
            markers.save(self.path, failed)
            await self._report_marker(failed)
            return None
        installed = marker.but(step="installed")
        markers.save(self.path, installed)
        if offer.bundle_id not in self._withdrawn:
            await self._status(offer, "installed", progress_pct=100, downloaded_bytes=proxy.downloaded_bytes)
        return installed

    async def _restart_when_allowed(self, offer: u.UpdateOffer, installed: Marker) -> None:
        while True:
            await self._until_window(offer.window)
            at = self.clock() + dt.timedelta(seconds=self.times.announce_s)
            self.controller.refresh(restart_at=at.isoformat(timespec="seconds"))
            await self._status(offer, "installed", reboot_at=at.isoformat(timespec="seconds"))
            await asyncio.sleep(self.times.announce_s)
            if self._window_open(offer.window):
                break
            self.controller.refresh(restart_at=None)  # somebody came: later
            await self._status(offer, "installed")
        await self._reboot(installed.but(step="rebooting"), offer, why=f"to start the update {installed.version}")

    async def _reboot(self, marker: Marker, offer: u.UpdateOffer | None = None, *, why: str) -> None:
        markers.save(self.path, marker)
        if offer is not None:
            await self._status(offer, "rebooting")
            await asyncio.sleep(self.times.farewell_s)
        self.reboots += 1
        try:
            await self.power.reboot(why)
        except PowerError as exc:
            log.error("could not restart for the update: %s", exc)
            self.controller.refresh(restart_at=None)  # the screen must not promise a restart that does not come

    # -- withdraw ------------------------------------------------------------------------------------
    async def _withdraw(self, bundle_id: int) -> None:
        offer = self._job_offer
        if offer is None or offer.bundle_id != bundle_id or self._job is None or self._job.done():
            return
        if self._installing:
            log.info("%s withdrawn while installing: the slot is finished but not booted", offer.version)
            return  # _install_then_restart gives the slot up when RAUC is done
        self._job.cancel()
        if (found := markers.load(self.path)) is not None and found.bundle_id == bundle_id and not found.outcome:
            await self._give_up_slot(offer)
        self.controller.refresh(restart_at=None)
        log.info("%s withdrawn", offer.version)

    async def _give_up_slot(self, offer: u.UpdateOffer) -> None:
        """RAUC made the new slot the first to boot: it must never boot now (a power cut would try it)."""
        try:
            await self.backend.mark_bad("other")
        except SlotError as exc:
            log.error("could not give up the slot of the withdrawn %s: %s", offer.version, exc)
        markers.remove(self.path)
        self.last = None

    # -- the window ----------------------------------------------------------------------------------
    def _window_open(self, window: str) -> bool:
        return window_open(window, self.controller.view, self.controller.busy, self.clock())

    async def _until_window(self, window: str) -> None:
        while not self._window_open(window):
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.times.look_s):
                    await self._changed.wait()

    # -- reports -------------------------------------------------------------------------------------
    async def _status(self, offer: u.UpdateOffer, state: str, **fields) -> None:
        await self._report(u.UpdateStatus(type="update.status", bundle_id=offer.bundle_id, version=offer.version,
                                          state=state, running_version=self.running_version, **fields))

    async def _report_marker(self, marker: Marker) -> None:
        status = u.UpdateStatus(type="update.status", bundle_id=marker.bundle_id, version=marker.version,
                                state=marker.step, fault=marker.fault, check=marker.check,
                                running_version=self.running_version)
        await self._report(status)
        if self.online() and not marker.reported:
            markers.save(self.path, marker.but(reported=True))

    async def _resend(self) -> None:
        if self.last is None:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(5):
                await self.controller.settle()  # the controller speaks first on a new connection
        await self._report(self.last)
        found = markers.load(self.path)
        if found is not None and found.outcome and not found.reported and found.bundle_id == self.last.bundle_id:
            markers.save(self.path, found.but(reported=True))

    async def _report(self, status: u.UpdateStatus) -> None:
        self.last = status
        log.info("update %s: %s%s", status.version, status.state, f" ({status.fault})" if status.fault else "")
        await self._send(status)

    def _spawn(self, work: Awaitable[None]) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)  # held until done: the loop keeps only weak references
        task.add_done_callback(self._tasks.discard)
        return task

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
