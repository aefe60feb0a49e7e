"""The staff console page. Its live part is static/console/ (main.js) talking to /ws/staff."""
from __future__ import annotations

import json

from aiohttp import web

from central.i18n import N_, catalogue
from central.web.auth import login_required
from central.web.render import render

# Strings the console scripts (static/console/) show; translated here so the script has no catalogue of its own.
CONSOLE_STRINGS = [
    N_("Available"), N_("Away"), N_("In a call"), N_("Pick up"), N_("Pick up next"), N_("Transfer to…"), N_("Send"), N_("Hang up"), N_("Mute"),
    N_("Unmute"), N_("Camera off"), N_("Camera on"), N_("Nobody is waiting."), N_("waiting for %(minutes)s min"),
    N_("A citizen is waiting"), N_("Connection lost. Reconnecting…"), N_("Connected"), N_("Message to the citizen"),
    N_("I will be with you in 2 minutes."), N_("Transferred"), N_("The call has ended."), N_("Closed"), N_("Open"),
    N_("Enable notifications"), N_("Connecting the call…"), N_("The citizen hung up."),
    N_("Connecting…"), N_("Status"), N_("Waiting citizens"), N_("Current call"), N_("No call in progress."),
    N_("Citizen's video"), N_("Your camera"), N_("Dismiss"), N_("Test alert"), N_("Message sent."),
    N_("Notifications are blocked in the browser settings."), N_("Not connected. Try again in a moment."),
    N_("The connection to the citizen failed."), N_("The connection to the kiosk was lost."),
    N_("The connection to the console was lost."), N_("The visit was transferred."),
    N_("Camera unavailable – the citizen can only hear you."), N_("online (from home)"),
    N_("Camera and microphone unavailable – the citizen can neither see nor hear you."),
    N_("Another clerk has already picked up this visit."), N_("Nobody is waiting in this department."),
    N_("This department is closed now."), N_("Too many messages to this citizen."),
    N_("Something went wrong: %(detail)s"), N_("The console was opened in another window."),
    N_("Use this window"), N_("With the keyboard, choose with the arrow keys and confirm with Enter."),
    N_("Notifications are on."), N_("Connection to central lost — reconnecting; your call continues."),
    N_("The video connection to %(location)s could not be set up (network). The citizen is back at the head of "
       "the queue."),
    N_("Your session has ended. Please log in again."),
    N_("The kiosk's camera stopped working. You can still hear each other; the citizen cannot be seen."),
    N_("The kiosk's loudspeaker stopped working. The citizen cannot hear you; you can still see and hear them."),
    N_("The kiosk's microphone stopped working, so the call was ended."),
    N_("This browser cannot play the kiosk's video (it lacks H.264 and VP8), so you and the citizen can only "
       "hear each other. Please tell IT."),
    N_("Today's appointments"), N_("No appointments booked today."), N_("%(booked)s booked, %(came)s checked in"),
    N_("Appointment %(time)s"),
    N_("Connection lost – waiting for them to come back"),
    # guests in a call (static/console/guests.js)
    N_("Interpreters and colleagues"), N_("Role"), N_("Interpreter"), N_("Colleague"),
    N_("Name or language, shown to everyone (optional)"), N_("Invite interpreter or colleague"),
    N_("Link for the guest"), N_("Copy link"), N_("Let in"), N_("Revoke link"), N_("Remove from the call"),
    N_("Link not used yet"), N_("Checking camera and microphone"), N_("Waiting to be let in"), N_("In the call"),
    N_("%(who)s is waiting to be let in."), N_("Link copied. Send it to your guest."),
    N_("The link for %(who)s was revoked."), N_("%(who)s was removed from the call."), N_("%(who)s left the call."),
    N_("The connection to %(who)s was lost."), N_("Too many links in a short time. Try again in %(seconds)s s."),
    N_("At most two guests per call. Revoke a link or remove a guest first."),
]
# The console gives up on a call's media this much later than central's own timer, so central (which knows
# whether the kiosk connected) normally decides first.
CONNECT_MARGIN_S = 5


@login_required
async def console_page(request: web.Request) -> web.Response:
    table = catalogue(request["locale"])
    strings = {s: table.get(s, s) for s in CONSOLE_STRINGS}
    connect_timeout_s = getattr(request.app["config"], "call_connect_timeout_s", 30) + CONNECT_MARGIN_S
    return render(request, "console.html", strings_json=json.dumps(strings, ensure_ascii=False),
                  connect_timeout_s=connect_timeout_s)


def routes() -> list[web.RouteDef]:
    return [web.get("/console", console_page)]
