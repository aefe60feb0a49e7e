"""The update states, faults and health checks in words for city IT (catalogue strings, translated
where shown). The codes themselves are protocol/updates.py's."""
from __future__ import annotations

from central.i18n import N_
from central.updates.book import NOT_REACHED, WAITING
from protocol.updates import HEALTH_CHECKS, UPDATE_FAULTS, UPDATE_STATES

# A kiosk's state in the fleet table; ``%(pct)s`` and ``%(reason)s`` filled in by the caller.
STATES = {
    "offered": N_("offered"),
    "downloading": N_("downloading (%(pct)s %%)"),
    "installed": N_("installed, restart pending"),
    "rebooting": N_("restarting into the new version"),
    "running": N_("running the new version"),
    "rolled_back": N_("rolled back: %(reason)s"),
    "failed": N_("failed: %(reason)s"),
    WAITING: N_("not offered yet (offline)"),
    NOT_REACHED: N_("ring not open yet"),
}
# Column headings of the counts on the updates page.
STATE_HEADINGS = {
    "offered": N_("Offered"), "downloading": N_("Downloading"), "installed": N_("Installed"),
    "rebooting": N_("Restarting"), "running": N_("Running"), "rolled_back": N_("Rolled back"),
    "failed": N_("Failed"), WAITING: N_("Not offered yet"), NOT_REACHED: N_("Ring not open"),
}
FAULTS = {
    "signature_invalid": N_("not signed with the city's key"),
    "bundle_corrupt": N_("the bundle is damaged (changed or cut short)"),
    "incompatible": N_("the bundle is for another kind of unit"),
    "download_failed": N_("the download failed; it is tried again"),
    "install_failed": N_("the other slot could not be written; it is tried again"),
    "interrupted": N_("power or software was lost while installing; it is tried again"),
    "health_check_failed": N_("the new version failed a check"),
    "boot_failed": N_("the new version did not start (it hung or crashed)"),
}
CHECKS = {
    "appliance_ready": N_("the kiosk software did not become ready"),
    "kiosk_page": N_("the kiosk page did not answer"),
    "central": N_("central could not be reached"),
    "camera": N_("the camera failed its self-test"),
    "microphone": N_("the microphone failed its self-test"),
}
RINGS = {"canary": N_("Canary kiosks"), "percent": N_("Percentage of the fleet"), "all": N_("All other kiosks")}
assert set(STATES) == set(UPDATE_STATES) | {WAITING, NOT_REACHED} == set(STATE_HEADINGS)
assert set(FAULTS) == set(UPDATE_FAULTS) and set(CHECKS) == set(HEALTH_CHECKS)


def reason(_, fault: str | None, check: str | None) -> str:  # noqa: ANN001 - a translator
    """Why a kiosk's update failed or rolled back, in words."""
    if fault == "health_check_failed" and check in CHECKS:
        return _(CHECKS[check])
    return _(FAULTS[fault]) if fault in FAULTS else _("no reason given")


def state(_, code: str, *, pct: int | None = None, fault: str | None = None, check: str | None = None) -> str:  # noqa: ANN001
    """A kiosk's update state in words."""
    return _(STATES[code], pct=pct if pct is not None else 0, reason=reason(_, fault, check))


def pause(_, kiosk: str, state_code: str, fault: str | None, check: str | None) -> str:  # noqa: ANN001
    """Why the rollout paused by itself, in a sentence."""
    if state_code == "rolled_back":
        return _("Paused: %(kiosk)s went back to its old version because %(reason)s. Look at that kiosk, then "
                 "resume the rollout or stop it.", kiosk=kiosk, reason=reason(_, fault, check))
    return _("Paused: %(kiosk)s refused the bundle because %(reason)s. Check the bundle, then resume the rollout "
             "or stop it.", kiosk=kiosk, reason=reason(_, fault, check))
