"""The kiosks' fault codes in words for city IT: what happened and what to do (catalogue strings, translated
where shown). The codes themselves are protocol/fleet.py's; docs/fleet.md explains them at more length."""
from __future__ import annotations

from central.i18n import N_
from protocol.fleet import FAULT_CODES

FAULTS = {
    "camera_missing": N_("No camera found: check the ribbon cable at both ends, or plug the USB camera in again"),
    "camera_failed": N_("The camera stopped delivering pictures or would not start (calls go on with sound only): "
                        "reseat its cable, then run the self-test"),
    "microphone_missing": N_("The microphone is unplugged: plug it in again"),
    "microphone_failed": N_("The microphone stopped delivering sound or would not start: plug it in again"),
    "microphone_silent": N_("The microphone delivers only silence: check its plug and the mute switch of a "
                            "speakerphone"),
    "speaker_failed": N_("The speaker refused the sound: check its cable and plug it in again"),
    "speaker_missing": N_("The speaker is unplugged: plug it in again"),
    "tone_not_heard": N_("The self-test's tone did not reach the microphone: check the volume, and that nothing "
                         "covers speaker or microphone"),
    "echo_behind": N_("Echo canceller fell behind (the unit's CPU is too busy): lower the camera's size or rate, "
                      "or use a faster unit"),
    "button_not_pressed": N_("Nobody pressed the call button during the self-test: repeat the self-test on site"),
    "network_down": N_("No network: check the cable and the switch port"),
    "central_unreachable": N_("Central did not answer: check the firewall between the kiosk and central"),
    "clock_unsynchronised": N_("The clock is not set by NTP (the unit has no clock of its own): allow NTP from "
                               "the kiosk's network"),
    "not_enrolled": N_("The unit is not enrolled yet: enrol it with the code on its screen"),
    "call_media_failed": N_("A call's sound and picture did not connect: usually the TURN server or a firewall"),
    "settings_rejected": N_("The kiosk could not apply central's settings: check this kiosk's settings"),
    "data_partition_full": N_("The data partition is (nearly) full: reinstall the unit if it stays so"),
    "overheated": N_("The CPU reached its temperature limit: check ventilation and sunlight"),
    "under_voltage": N_("The power supply is too weak: use the official power supply"),
    "software_error": N_("The kiosk's software caught an unexpected error: if it repeats, send the unit's log to "
                         "the maintainers"),
}
assert set(FAULTS) == set(FAULT_CODES), "every fault code of protocol/fleet.py needs its words here"


def fault_text(_, code: str | None) -> str:  # noqa: ANN001 - a translator
    """A fault code in words (empty for none; the code itself for one this central does not know yet)."""
    if not code:
        return ""
    return _(FAULTS[code]) if code in FAULTS else code
