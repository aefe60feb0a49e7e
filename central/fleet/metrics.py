"""``GET /metrics`` in the Prometheus text format (version 0.0.4), written by hand: a few gauges
per kiosk need no client library, and the label escaping is done here once.

Base units (seconds, bytes, celsius), ``_info`` gauges of value 1 for versions, ``_total`` only
on counters. What each metric means is in docs/fleet.md.
"""
from __future__ import annotations

import importlib.metadata
from collections import Counter
from collections.abc import Iterable

from central.fleet.view import KioskLine
from central.storage.staff_browsers import ClerkVideo
from central.updates.book import NOT_REACHED, WAITING
from central.updates.rings import RINGS, Rollout
from protocol import fleet as f
from protocol.updates import UPDATE_STATES

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
THROTTLING: tuple[str, ...] = f.Throttling.__args__
ROLLOUT_STATES = (WAITING, *UPDATE_STATES, NOT_REACHED)  # every one sampled, 0 too, so alerts see them


def central_version() -> str:
    try:
        return importlib.metadata.version("amtsklingel")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def escape(value: str) -> str:
    """A label value as the text format wants it: backslash, double quote and newline escaped."""
    return value.replace("\\", "\\\\").replace("\"", "\\\"").replace("\n", "\\n")


def _number(value: float) -> str:
    return repr(float(value)) if isinstance(value, float) else str(value)


class _Family:
    def __init__(self, name: str, kind: str, help_text: str):
        self.name, self.kind, self.help = name, kind, help_text
        self.samples: list[str] = []

    def add(self, value: float, **labels: str) -> None:
        inner = ",".join(f'{k}="{escape(v)}"' for k, v in labels.items())
        self.samples.append(f"{self.name}{{{inner}}} {_number(value)}" if inner else f"{self.name} {_number(value)}")

    def text(self) -> str:
        return f"# HELP {self.name} {self.help}\n# TYPE {self.name} {self.kind}\n" + "".join(
            s + "\n" for s in self.samples)


FAMILIES: tuple[tuple[str, str, str], ...] = (
    ("amtsklingel_kiosk_up", "gauge", "1 if the kiosk is connected to central now, else 0."),
    ("amtsklingel_kiosk_office_open", "gauge",
     "1 if one of the departments the kiosk offers is open now (alert on up == 0 only then)."),
    ("amtsklingel_kiosk_last_seen_timestamp_seconds", "gauge", "When central last heard from the kiosk."),
    ("amtsklingel_kiosk_build_info", "gauge", "The kiosk's software version and root slot (value 1)."),
    ("amtsklingel_kiosk_device_ok", "gauge",
     "1 if the device works, 0 if it failed or is missing (no sample while it is untested)."),
    ("amtsklingel_kiosk_device_info", "gauge",
     "The device the kiosk uses, as it names it (value 1), e.g. its USB speakerphone's model and ALSA name."),
    ("amtsklingel_kiosk_cpu_temperature_celsius", "gauge", "The kiosk's CPU temperature."),
    ("amtsklingel_kiosk_throttled", "gauge", "1 while the Pi firmware reports this flag, else 0."),
    ("amtsklingel_kiosk_data_partition_used_bytes", "gauge", "Bytes in use on the kiosk's data partition."),
    ("amtsklingel_kiosk_data_partition_size_bytes", "gauge", "Size of the kiosk's data partition in bytes."),
    ("amtsklingel_kiosk_rtt_seconds", "gauge", "Round trip from the kiosk to central (last ping)."),
    ("amtsklingel_kiosk_faults_total", "counter", "Faults the kiosk saw since its software started, by code."),
    ("amtsklingel_kiosk_calls_today", "gauge", "Calls picked up from the kiosk today (the city's day)."),
    ("amtsklingel_department_waiting_visits", "gauge", "Citizens waiting in the department now."),
    ("amtsklingel_department_clerks_online", "gauge", "Consoles of the department's clerks connected now."),
    ("amtsklingel_kiosk_update_state", "gauge",
     "The kiosk's update state for the bundle it last heard of (value 1; running once it runs that version)."),
    ("amtsklingel_kiosk_update_downloaded_bytes", "gauge", "Bytes of that bundle the kiosk fetched so far."),
    ("amtsklingel_rollout_kiosks", "gauge", "Kiosks of the live rollout per ring and state."),
    ("amtsklingel_rollout_paused", "gauge", "1 while the live rollout is paused (a kiosk rolled back, or by IT)."),
    ("amtsklingel_central_build_info", "gauge", "Central's software version (value 1)."),
    ("amtsklingel_central_leader", "gauge",
     "1 if this central leads (holds the waiting rooms; one on its own always does), 0 on a standby or edge."),
    ("amtsklingel_central_relayed_sockets", "gauge",
     "WebSockets this central relays to the leader (an edge of several centrals; 0 on the leader)."),
    ("amtsklingel_bookings_total", "counter",
     "Booked appointments by department and outcome: booked, cancelled, kept (the citizen came), missed (nobody "
     "came; counted when the booking is deleted after its day)."),
    ("amtsklingel_clerk_browsers", "gauge",
     "Staff accounts by what their browser took in their last call: h264=\"no\" makes a Pi 4 kiosk encode the "
     "video in software; video is the codec it answered first (\"none\": it refused the video)."),
)


# What a central says of itself; everything else on the page is the leader's to say.
CENTRAL_OWN = ("amtsklingel_central_build_info", "amtsklingel_central_leader", "amtsklingel_central_relayed_sockets")


def not_leading(relayed: int) -> str:
    """The page of a central that does not lead (an edge or standby of several): its own figures alone.

    Prometheus scrapes every central directly (docs/fleet.md). The kiosks, rooms, rollout and bookings
    are the leader's: an edge knows no kiosk as connected (they are the leader's peers, relayed), so its
    ``amtsklingel_kiosk_up`` would be 0 for every kiosk and fire KioskDownDuringOfficeHours for the whole
    fleet, and its copies of the bookings' counters would double every sum. Without a leader nobody
    reports them, and NoCentralServes says why.
    """
    families = {name: _Family(name, kind, text) for name, kind, text in FAMILIES if name in CENTRAL_OWN}
    families["amtsklingel_central_build_info"].add(1, version=central_version())
    families["amtsklingel_central_leader"].add(0)
    families["amtsklingel_central_relayed_sockets"].add(relayed)
    return "".join(family.text() for family in families.values())


def exposition(lines: Iterable[KioskLine], waiting: dict[str, int], clerks_online: dict[str, int]) -> str:
    """The whole page. ``waiting`` and ``clerks_online``: per department slug."""
    page = Exposition()
    page.add_kiosks(lines)
    return page.text(waiting, clerks_online)


def _rollout_samples(fam: dict, rollout: Rollout | None, counts: dict[str, Counter[str]]) -> None:
    if rollout is None:
        return
    labels = {"bundle": str(rollout.bundle_id), "version": rollout.version}
    fam["amtsklingel_rollout_paused"].add(int(rollout.state == "paused"), **labels)
    for ring in RINGS:
        for state in ROLLOUT_STATES:
            fam["amtsklingel_rollout_kiosks"].add(counts.get(ring, Counter())[state], **labels, ring=ring,
                                                  state=state)


class Exposition:
    """The page, built up a few kiosks at a time (central/web/metrics.py serves others in between)."""

    def __init__(self) -> None:
        self.families = {name: _Family(name, kind, text) for name, kind, text in FAMILIES}

    def add_kiosks(self, lines: Iterable[KioskLine]) -> None:
        for line in lines:
            self._kiosk(line)

    def text(self, waiting: dict[str, int], clerks_online: dict[str, int], rollout: Rollout | None = None,
             rollout_counts: dict[str, Counter[str]] | None = None,
             clerk_browsers: Iterable[ClerkVideo] = (), bookings: dict[tuple[str, str], int] | None = None,
             ) -> str:
        """The page; with the live ``rollout`` and its counts per ring and state (UpdateBook.counts), and
        each staff account's browser as of its last call (central/storage/staff_browsers.py), and the
        bookings' counters per (department, outcome) (central/storage/bookings.py). The leader's page (or
        that of a central on its own); ``not_leading`` is the others'."""
        fam = self.families
        browsers = Counter(("yes" if seen.h264 else "no", seen.video) for seen in clerk_browsers)
        for (h264, video), count in sorted(browsers.items()):
            fam["amtsklingel_clerk_browsers"].add(count, h264=h264, video=video)
        _rollout_samples(fam, rollout, rollout_counts or {})
        for slug in sorted(waiting):
            fam["amtsklingel_department_waiting_visits"].add(waiting[slug], department=slug)
            fam["amtsklingel_department_clerks_online"].add(clerks_online.get(slug, 0), department=slug)
        fam["amtsklingel_central_build_info"].add(1, version=central_version())
        fam["amtsklingel_central_leader"].add(1)
        fam["amtsklingel_central_relayed_sockets"].add(0)  # the leader relays nothing: it serves
        for (slug, outcome), count in sorted((bookings or {}).items()):
            fam["amtsklingel_bookings_total"].add(count, department=slug, outcome=outcome)
        return "".join(family.text() for family in fam.values())

    def _kiosk(self, line: KioskLine) -> None:
        fam = self.families
        s, kiosk = line.state, str(line.kiosk.id)
        location = line.kiosk.location
        fam["amtsklingel_kiosk_up"].add(int(s.online), kiosk=kiosk, location=location)
        fam["amtsklingel_kiosk_office_open"].add(int(line.office_open), kiosk=kiosk, location=location)
        fam["amtsklingel_kiosk_calls_today"].add(line.calls_today, kiosk=kiosk)
        if (update := line.update) is not None:
            fam["amtsklingel_kiosk_update_state"].add(1, kiosk=kiosk, version=update.version, state=update.state)
            if update.downloaded_bytes is not None:
                fam["amtsklingel_kiosk_update_downloaded_bytes"].add(update.downloaded_bytes, kiosk=kiosk,
                                                                     version=update.version)
        if s.last_seen is not None:
            fam["amtsklingel_kiosk_last_seen_timestamp_seconds"].add(round(s.last_seen, 3), kiosk=kiosk,
                                                                     location=location)
        h = s.health
        if s.version is not None:
            fam["amtsklingel_kiosk_build_info"].add(1, kiosk=kiosk, version=s.version,
                                                    slot=(h.slot if h is not None and h.slot else "unknown"))
        if h is None:
            return
        for device, d in h.devices.items():
            if d.state != "unknown":
                fam["amtsklingel_kiosk_device_ok"].add(int(d.state == "ok"), kiosk=kiosk, device=device)
            if d.name:
                fam["amtsklingel_kiosk_device_info"].add(1, kiosk=kiosk, device=device, name=d.name)
        if h.cpu_temp_c is not None:
            fam["amtsklingel_kiosk_cpu_temperature_celsius"].add(float(h.cpu_temp_c), kiosk=kiosk)
        for flag in THROTTLING:
            fam["amtsklingel_kiosk_throttled"].add(int(flag in h.throttling), kiosk=kiosk, flag=flag)
        if h.data_used_bytes is not None and h.data_total_bytes is not None:
            fam["amtsklingel_kiosk_data_partition_used_bytes"].add(h.data_used_bytes, kiosk=kiosk)
            fam["amtsklingel_kiosk_data_partition_size_bytes"].add(h.data_total_bytes, kiosk=kiosk)
        if h.rtt_ms is not None:
            fam["amtsklingel_kiosk_rtt_seconds"].add(round(h.rtt_ms / 1000, 6), kiosk=kiosk)
        faults: Counter[str] = Counter()
        for fault in h.faults:
            faults[fault.code] += fault.count
        for code, count in sorted(faults.items()):
            fam["amtsklingel_kiosk_faults_total"].add(count, kiosk=kiosk, code=code)
