"""Flood limits (central/live/limits.py Buckets): full buckets are forgotten, but not by looking at every
bucket on every request, which made each visit request cost as much as the kiosks connected."""
from __future__ import annotations

from central.live.limits import Buckets, Rate


def test_full_buckets_are_forgotten_once_their_number_has_doubled():
    now = [0.0]
    buckets = Buckets(Rate(capacity=3, per_second=1.0), clock=lambda: now[0], prune_above=10)
    for key in range(11):        # the 11th is one above prune_above: none is full yet, all are kept
        assert buckets.take(key) == 0.0
    assert len(buckets) == 11
    for key in range(11, 22):    # up to twice what was kept, nobody is looked at again
        buckets.take(key)
    assert len(buckets) == 22
    now[0] += 10.0               # every bucket full again
    buckets.take("a")            # 23 > 22: the full ones go, the one just used stays
    assert len(buckets) == 1


def test_forgetting_does_not_change_what_is_refused():
    now = [0.0]
    buckets = Buckets(Rate(capacity=2, per_second=0.5), clock=lambda: now[0], prune_above=3)
    assert buckets.take("k") == 0.0 and buckets.take("k") == 0.0
    assert buckets.take("k") == 2.0      # empty: one token comes in 2 s
    for key in range(20):                # many others come and go meanwhile
        buckets.take(key)
    assert buckets.take("k") > 0         # still refused: its bucket was not forgotten
    now[0] += 2.0
    assert buckets.take("k") == 0.0
