"""Durations kept as counts per bucket, so a median can be estimated without keeping any one visit.

Buckets are narrow where waits and calls usually lie (10 s under a minute, 30 s up
to ten minutes) and wider beyond; the median read back is exact to within the
width of its bucket, which is all a daily overview or a wait estimate needs.
"""
from __future__ import annotations

import bisect
from collections.abc import Mapping

from protocol.errors import AmtsklingelError


class RankOutOfRange(AmtsklingelError, IndexError):
    """Asked for the k-th value of a histogram that holds fewer values."""

EDGES: tuple[int, ...] = (
    *range(0, 60, 10), *range(60, 600, 30), *range(600, 1800, 60), *range(1800, 7200, 300), 7200)


def bucket_of(seconds: float) -> int:
    """The lower edge of the bucket ``seconds`` falls into."""
    return EDGES[max(0, bisect.bisect_right(EDGES, max(0.0, seconds)) - 1)]


def width_of(lower: int) -> int:
    """A bucket's width; the last one is open-ended and counted as 0 wide."""
    i = EDGES.index(lower)
    return EDGES[i + 1] - lower if i + 1 < len(EDGES) else 0


def point(counts: Mapping[int, int], k: int) -> float:
    """The ``k``-th smallest (from 0) of what ``counts`` (lower edge -> count) holds.

    The values of a bucket are taken as spread evenly across it (its middle, for one value).
    """
    below = 0
    for lower in sorted(counts):
        count = counts[lower]
        if k < below + count:
            return lower + width_of(lower) * (k - below + 0.5) / count
        below += count
    raise RankOutOfRange(k)


def median(counts: Mapping[int, int]) -> float | None:
    total = sum(counts.values())
    if total <= 0:
        return None
    if total % 2:
        return point(counts, total // 2)
    return (point(counts, total // 2 - 1) + point(counts, total // 2)) / 2


def spread(counts: Mapping[int, int], n: int) -> list[float]:
    """Up to ``n`` values spread like ``counts`` (evenly chosen by rank): a stand-in for the durations."""
    total = sum(counts.values())
    n = min(n, total)
    return [point(counts, int((i + 0.5) * total / n)) for i in range(n)]
