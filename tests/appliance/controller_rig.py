"""The kiosk's state machine on a test rig: central is played by the test, each call is a FakeCall the test
reports media and device states through; helpers that take the rig to the waiting screen, into a connected call,
or away from central and back."""
from __future__ import annotations

import asyncio
import json

import pytest

from appliance.controller.machine import Controller, Timeouts
from protocol import messages as m
from protocol.codec import decode
from tests.polling import until

VISIT = "v" * 24
TOKEN = "t" * 24


class FakeCall:
    def __init__(self, ice_servers, on_state):
        self.ice_servers = ice_servers
        self.report = on_state  # the test plays the peer connection: report("connected" | "failed")
        self.answer = None
        self.candidates = []
        self.closed = False

    async def offer(self) -> str:
        return "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\n"

    async def accept_answer(self, sdp):
        self.answer = sdp

    async def add_candidate(self, candidate):
        self.candidates.append(candidate)

    async def close(self):
        self.closed = True


class Rig:
    def __init__(self, timeouts: Timeouts):
        self.sent: list[m.Message] = []
        self.calls: list[FakeCall] = []
        self.leds: list[str] = []
        self.views = []
        self.c = Controller(send=self._send, new_call=self._call, led=self.leds.append, publish=self.views.append,
                            timeouts=timeouts)
        self.task = asyncio.get_running_loop().create_task(self.c.run())

    async def _send(self, msg):
        self.sent.append(msg)

    def _call(self, servers, on_state):
        self.calls.append(FakeCall(servers, on_state))
        return self.calls[-1]

    async def do(self, kind, value=None):
        self.c.post(kind, value)
        await self.c.settle()
        return self.c.view

    async def central(self, **msg):
        return await self.do("central", _parse(msg))

    async def online(self, *departments):
        deps = departments or (("buergerbuero", True), ("standesamt", True), ("ordnungsamt", False))
        welcome = m.Welcome(type="welcome", kiosk_location="Foyer", ice_servers=[], departments=[
            m.DepartmentInfo(slug=s, name=s.title(), open=o, next_opening=None if o else "2026-11-23T08:00:00+01:00")
            for s, o in deps])
        return await self.do("connected", welcome)


def _parse(msg):
    return decode(json.dumps(msg), m.CENTRAL_TO_KIOSK)


@pytest.fixture
async def rig():
    r = Rig(Timeouts(choosing_s=0.2, consent_s=0.2, ended_s=0.2, notice_s=0.2, request_s=0.3, media_s=60))
    yield r
    r.task.cancel()


async def wait_for(rig, predicate, seconds=2.0):
    async def holds():
        await rig.c.settle()
        return predicate(rig.c.view)
    await until(holds, seconds=seconds, every=0.02, what="the kiosk's view")


async def to_waiting(rig, department="buergerbuero"):
    await rig.online()
    await rig.do("press")
    await rig.do("choose", department)
    await rig.do("press")
    await rig.central(type="visit.queued", visit_id=VISIT, resume_token=TOKEN, department=department,
                      position=2, expected_wait_s=600)


TOKENS = ["a" * 24 + "." + "1" * 20, "a" * 24 + "." + "2" * 20, "a" * 24 + "." + "3" * 20,
          "a" * 24 + "." + "4" * 20]


def resumes(rig):
    return [s.resume_token for s in rig.sent if s.type == "visit.resume"]


async def reconnect(rig):
    await rig.do("disconnected")
    await rig.online()


async def in_call(rig):
    await to_waiting(rig)
    await rig.central(type="call.start", visit_id=VISIT, ice_servers=[], resume_token=TOKEN)
    rig.calls[-1].report("connected")
    await rig.c.settle()
    rig.sent.clear()
