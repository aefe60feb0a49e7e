"""The rollout's rules without central: rings, pausing on a rollback or a final refusal, retries,
never offering a kiosk the version it runs, and which report may follow which."""
from __future__ import annotations

import dataclasses

import pytest

from central.updates.book import NOT_REACHED, WAITING, UpdateBook
from central.updates.rings import Rollout, bucket, next_state_allowed, ring_of, targeted
from protocol.errors import ErrorCode, ProtocolError
from protocol.updates import UpdateStatus

FLEET = range(1, 2001)


def rollout(**changes) -> Rollout:
    values = dict(id=1, bundle_id=7, version="0.4.0+b", size_bytes=1000, sha256="a" * 64,
                  path="/updates/bundles/7/amtsklingel-0.4.0+b.raucb", canary=frozenset({3, 5}))
    return Rollout(**{**values, **changes})


def status(state: str, **fields) -> UpdateStatus:
    return UpdateStatus(type="update.status", bundle_id=fields.pop("bundle_id", 7), version=fields.pop("version", "0.4.0+b"),
                        state=state, running_version=fields.pop("running_version", "0.3.0+a"), **fields)


def book_with(r: Rollout) -> UpdateBook:
    book = UpdateBook(clock=lambda: 1000.0)
    book.set_rollout(r)
    return book


def test_canary_ring_reaches_only_the_canaries():
    r = rollout()
    assert [k for k in FLEET if targeted(r, k)] == [3, 5]
    assert {ring_of(r, k) for k in FLEET if k not in (3, 5)} == {"all"}


def test_percentage_ring_is_stable_and_growing_only_adds_kiosks():
    reached = {}
    for percent in (1, 10, 25, 50, 100):
        r = rollout(ring="percent", percent=percent)
        reached[percent] = {k for k in FLEET if targeted(r, k)}
        assert reached[percent] == {k for k in FLEET if targeted(rollout(ring="percent", percent=percent), k)}
    assert reached[1] < reached[10] < reached[25] < reached[50] < reached[100] == set(FLEET)
    assert {3, 5} <= reached[1]                                   # the canaries stay in
    assert 0.05 * 2000 < len(reached[10]) < 0.15 * 2000           # about the share asked for
    other = {k for k in FLEET if targeted(rollout(bundle_id=8, ring="percent", percent=10), k)}
    assert other != reached[10]                                    # another bundle, other kiosks first
    assert bucket(7, 42) == bucket(7, 42)


def test_all_ring_reaches_every_kiosk_and_a_stopped_rollout_none():
    assert all(targeted(rollout(ring="all"), k) for k in FLEET)
    assert not any(targeted(rollout(ring="all", state="stopped"), k) for k in FLEET)


def test_offered_to_reached_kiosks_never_to_one_running_the_version():
    book = book_with(rollout())
    assert book.offer_for(3, "0.3.0+a") is not None
    assert book.offer_for(5, "0.4.0+b") is None   # its health report names the bundle's version
    assert book.offer_for(4, "0.3.0+a") is None   # not a canary
    book.record(3, status("running", running_version="0.4.0+b"))
    assert book.offer_for(3, "0.3.0+a") is None   # it said it runs it (its health report is older)


@pytest.mark.parametrize("state,fault,check", [("rolled_back", "health_check_failed", "camera"),
                                                ("rolled_back", "boot_failed", None),
                                                ("failed", "signature_invalid", None),
                                                ("failed", "bundle_corrupt", None),
                                                ("failed", "incompatible", None)])
def test_a_rollback_or_final_refusal_pauses_with_the_reason_and_is_not_offered_again(state, fault, check):
    book = book_with(rollout())
    book.offer_for(3, "0.3.0+a")
    book.offer_for(5, "0.3.0+a")
    book.record(3, status("downloading", progress_pct=40))
    paused = book.record(3, status(state, fault=fault, check=check))
    assert paused is not None and paused.state == "paused"
    assert (paused.pause.kiosk_id, paused.pause.state, paused.pause.fault, paused.pause.check) == (3, state, fault, check)
    assert book.rollout_dirty                      # to be written by the batch writer
    assert book.offer_for(5, "0.3.0+a") is None    # paused: nobody is offered
    book.set_rollout(dataclasses.replace(paused, state="active", pause=None))
    assert book.offer_for(3, "0.3.0+a") is None    # resumed: not the kiosk that refused it
    assert book.offer_for(5, "0.3.0+a") is not None
    assert book.record(3, status(state, fault=fault, check=check)) is None  # said again: no second pause


@pytest.mark.parametrize("fault", ["interrupted", "download_failed", "install_failed"])
def test_a_retryable_failure_neither_pauses_nor_stops_the_next_offer(fault):
    book = book_with(rollout())
    book.offer_for(3, "0.3.0+a")
    book.record(3, status("downloading", progress_pct=10))
    assert book.record(3, status("failed", fault=fault)) is None
    assert book.rollout.state == "active"
    assert book.offer_for(3, "0.3.0+a") is not None  # on its next connect
    book.record(3, status("offered"))
    book.record(3, status("downloading", progress_pct=5))


def test_reports_on_bundles_not_offered_or_out_of_order_are_refused_and_change_nothing():
    book = book_with(rollout())
    with pytest.raises(ProtocolError) as err:
        book.record(3, status("offered"))             # never offered to this kiosk
    assert err.value.code is ErrorCode.NOT_OFFERED
    book.offer_for(3, "0.3.0+a")
    with pytest.raises(ProtocolError) as err:
        book.record(3, status("offered", bundle_id=9))  # another bundle
    assert err.value.code is ErrorCode.NOT_OFFERED
    book.record(3, status("installed"))
    before = dataclasses.asdict(book.statuses[(3, 7)])
    for bad, code in [(status("downloading", progress_pct=3), ErrorCode.WRONG_STATE),
                      (status("offered"), ErrorCode.WRONG_STATE),
                      (status("running", running_version="0.3.0+a"), ErrorCode.INVALID_FIELD),
                      (status("failed"), ErrorCode.INVALID_FIELD),
                      (status("installed", version="0.9"), ErrorCode.INVALID_FIELD)]:
        with pytest.raises(ProtocolError) as err:
            book.record(3, bad)
        assert err.value.code is code, bad
    assert dataclasses.asdict(book.statuses[(3, 7)]) == before
    book.offer_for(3, "0.3.0+a")                      # offered again (a reconnect): it may start over
    book.record(3, status("offered"))


def test_transitions():
    assert next_state_allowed("offered", None, "rebooting", offered_again=False)   # away while it worked
    assert not next_state_allowed("rebooting", None, "downloading", offered_again=True)
    assert not next_state_allowed("running", None, "failed", offered_again=True)
    assert not next_state_allowed("running", None, "offered", offered_again=True)
    assert next_state_allowed("running", None, "rolled_back", offered_again=False)  # said during the trial
    assert not next_state_allowed("rolled_back", "boot_failed", "offered", offered_again=True)
    assert next_state_allowed("failed", "interrupted", "downloading", offered_again=False)
    assert next_state_allowed("downloading", None, "failed", offered_again=False)


def test_counts_per_ring_and_state():
    book = book_with(rollout(ring="percent", percent=50))
    fleet = {k: "0.3.0+a" for k in range(1, 41)}
    fleet[5] = "0.4.0+b"
    for k in fleet:
        book.offer_for(k, fleet[k])
    book.record(3, status("downloading", progress_pct=20))
    counts = book.counts(fleet.items())
    assert counts["canary"] == {"downloading": 1, "running": 1}
    percent = [k for k in fleet if ring_of(book.rollout, k) == "percent"]
    assert counts["percent"] == {"offered": len(percent)}
    assert counts["all"] == {NOT_REACHED: 40 - 2 - len(percent)}
    book.set_rollout(dataclasses.replace(book.rollout, ring="all"))
    assert book.counts(fleet.items())["all"] == {WAITING: 40 - 2 - len(percent)}


def test_fleet_page_view_of_a_kiosk():
    book = book_with(rollout())
    assert book.shown(3, "0.3.0+a") is None
    book.offer_for(3, "0.3.0+a")
    book.record(3, status("downloading", progress_pct=35))
    shown = book.shown(3, "0.3.0+a")
    assert (shown.state, shown.progress_pct, shown.version) == ("downloading", 35, "0.4.0+b")
    assert book.shown(3, "0.4.0+b").state == "running"   # its health report names the new version
