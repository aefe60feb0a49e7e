"""Each benchmark's default plan stays within what central allows one kiosk (central/live/limits.py).

Since central limits visit requests per kiosk (VISIT_REQUESTS) two benchmarks could not run at their
defaults any more; these checks fail before a benchmark is ever started if a default asks more of one
simulated kiosk than central allows a real one.
"""
from __future__ import annotations

import pytest

from bench.__main__ import parse
from bench._limits import KioskPlan, kiosks_for
from central.live.limits import KIOSK_CONNECTS, VISIT_REQUESTS

KIOSK_BENCHMARKS = ("central_latency", "kiosk_call", "fleet", "resilience", "scale", "scale2")


def default_args(quick: bool = False):
    """The options ``python -m bench`` gives the benchmarks, at their defaults, and the modules by name."""
    args, modules, _ = parse(["--quick"] if quick else [])
    return args, {m.NAME: m for m in modules}


@pytest.mark.parametrize("quick", [False, True], ids=["defaults", "quick"])
@pytest.mark.parametrize("name", KIOSK_BENCHMARKS)
def test_default_plan_is_within_centrals_per_kiosk_limits(name, quick):
    args, modules = default_args(quick)
    module = modules[name]
    if name == "central_latency" and args.kiosks is None:
        args.kiosks = kiosks_for(args.rate)  # as its run() does
    plan = module.kiosk_plan(args)
    assert isinstance(plan, KioskPlan)
    assert plan.visit_requests_per_s <= VISIT_REQUESTS.per_second
    assert plan.visit_burst <= VISIT_REQUESTS.capacity
    assert plan.connects_per_s <= KIOSK_CONNECTS.per_second
    assert plan.connect_burst <= KIOSK_CONNECTS.capacity
    assert plan.problems() == []


def test_central_latency_spreads_its_default_rate_over_enough_kiosks():
    args, _ = default_args()
    # the per-kiosk pace at the default rate: one request per 25 s, not the 1 s of 100 kiosks
    assert args.rate / kiosks_for(args.rate) <= VISIT_REQUESTS.per_second
    assert kiosks_for(args.rate) >= args.rate / VISIT_REQUESTS.per_second


def test_a_plan_over_the_limit_is_named():
    hundred_kiosks = KioskPlan(visit_requests_per_s=100 / 100, visit_burst=1)
    assert hundred_kiosks.problems() and "VISIT_REQUESTS" in hundred_kiosks.problems()[0]
    one_kiosk_many_calls = KioskPlan(visit_requests_per_s=0.0, visit_burst=42)
    assert one_kiosk_many_calls.problems()
