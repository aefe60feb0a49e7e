"""The call's media on the kiosk: starting it, its state reports, and a call that cannot carry media.

Media is peer to peer, so a call goes on while central is away; this side keeps
its own timer for a call that does not connect and tells central what happened
here (see core.py for how the controller is assembled).
"""
from __future__ import annotations

import asyncio
import logging

from appliance.controller.core import ControllerCore
from appliance.controller.view import Screen
from protocol import fleet as f
from protocol import messages as m

log = logging.getLogger(__name__)


class CallMedia(ControllerCore):
    async def _start_call(self, msg: m.CallStart) -> None:
        await self._close_call()  # a repeated call.start renegotiates from scratch
        self._call_number += 1
        number = self._call_number
        self._call = self._new_call(msg.ice_servers, lambda state: self.post("rtc_state", (number, state)))
        self._media_failed = False
        self._enter(Screen.IN_CALL, microphone_on=True, camera_on=True, message=None, notice=None)
        # Central has its own timer; this one also holds when central is away.
        self._media_timer = asyncio.get_running_loop().call_later(self.timeouts.media_s, self.post,
                                                                  "media_timeout", number)
        await self._send(m.RtcOffer(type="rtc.offer", visit_id=msg.visit_id, sdp=await self._call.offer()))

    async def _on_rtc_state(self, number: int, state: str) -> None:
        if number != self._call_number or self._call is None:
            return  # a call we closed already
        log.info("call %d: %s", number, state)  # the call's course in the journal, for IT
        if state == "connected" and not self._call_connected:
            self._call_connected = True
            self._cancel_media_timer()
            await self._report_rtc("connected")
        elif state == "failed":
            await self._on_media_failed()
        elif state == "video_rejected":  # the clerk's browser takes none of our video: talk without pictures
            self._show(camera_on=False, notice="video_rejected")
        elif state == "speaker_back":  # plugged in again during the call (appliance/service/main.py)
            if self.view.notice == "speaker_failed":
                self._show(notice=None)
        elif state in ("camera_failed", "microphone_failed", "speaker_failed") and self._visit and self._visit.visit_id:
            # appliance/call/devices.py watches the call's camera and microphone, the service its speaker
            device = state.removesuffix("_failed")
            await self._send(f.DeviceFault(type="device.fault", device=device, fault=state, visit_id=self._visit.visit_id))
            if device == "camera":  # the citizen can still talk: go on audio-only, central tells the clerk
                self._show(camera_on=False, notice="camera_failed")
            elif device == "speaker":  # the citizen is still seen and heard: go on, central tells the clerk
                self._show(notice="speaker_failed")
            else:  # nobody could hear the citizen: end the call, saying why on both sides
                await self._leave(in_call=True, reason="device_failed")

    async def _on_media_timeout(self, number: int) -> None:
        if number == self._call_number and self._call is not None and not self._call_connected:
            log.warning("the call's media did not connect within %.0f s", self.timeouts.media_s)
            await self._on_media_failed()

    async def _on_media_failed(self) -> None:
        """The call cannot carry media: back to waiting; central answers call.failed with the new place."""
        await self._close_call()
        self._media_failed = True
        self._enter(Screen.WAITING, notice="call_failed", selected=self._visit.department if self._visit else None,
                    position=None, expected_wait_s=None, message=None)
        await self._report_rtc("failed")

    async def _report_rtc(self, state: str) -> None:
        if self._visit and self._visit.visit_id:
            await self._send(m.RtcState(type="rtc.state", visit_id=self._visit.visit_id, state=state))
