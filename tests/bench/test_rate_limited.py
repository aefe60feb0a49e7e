"""A benchmark's kiosk that central answers ``rate_limited`` stops the run with the limit's name,
instead of counting a failed or slow visit."""
from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace

import aiohttp
import pytest

from bench._central_latency.clients import Kiosk as LatencyKiosk
from bench._limits import Allowance, RateLimited
from bench.fleet import Kiosk as FleetKiosk
from central.live.limits import VISIT_REQUESTS, Buckets

REFUSAL = {"v": 1, "type": "error", "code": "rate_limited", "detail": "too many visit requests", "retry_after_s": 17}


class OneFrameSocket:
    """Yields one text frame as central sent it, then stays open."""

    def __init__(self, frame: dict):
        self.frames = [SimpleNamespace(type=aiohttp.WSMsgType.TEXT, data=json.dumps(frame))]

    def __aiter__(self):
        return self

    async def __anext__(self):
        if self.frames:
            return self.frames.pop()
        await asyncio.Event().wait()


@pytest.mark.parametrize("kiosk_class", [LatencyKiosk, FleetKiosk], ids=["central_latency", "fleet"])
async def test_a_refused_visit_request_names_the_limit(kiosk_class):
    ws = OneFrameSocket(REFUSAL)
    kiosk = kiosk_class(None, ws) if kiosk_class is LatencyKiosk else kiosk_class(ws)
    reader = kiosk.task if kiosk_class is LatencyKiosk else kiosk.reader
    try:
        with pytest.raises(RateLimited, match=r"VISIT_REQUESTS in central/live/limits\.py") as refused:
            await kiosk.expect("visit.queued")
        assert "3 in quick succession, then one per 20 s" in str(refused.value)
    finally:
        reader.cancel()


def test_the_allowance_never_grants_what_central_would_refuse():
    now = [0.0]
    allowance, central = Allowance(clock=lambda: now[0]), Buckets(VISIT_REQUESTS, clock=lambda: now[0])
    granted = 0
    for step in [0.0] * 5 + [1.0, 5.0, 19.0, 20.0, 21.0, 0.5, 40.0, 0.0, 0.0, 60.0, 0.0, 0.0, 0.0]:
        now[0] += step
        if allowance.take("k"):
            granted += 1
            assert central.take("k") == 0.0, f"central would refuse request {granted} at {now[0]} s"
    assert granted >= 6
    assert allowance.wait_s(["k"], 2) <= 2.1 / VISIT_REQUESTS.per_second
