"""What guards the public booking pages: per-address limits, the Origin of a form, and the links it makes.

Limits are per address (central/web/client.py: an IPv4 address or an IPv6 /64) and per central
process, as token buckets (central/live/limits.py). Looking up a code that does not exist costs a
token; a valid code costs nothing, so a citizen can open their booking as often as they like while
guessing codes stays at a handful a minute (2^40 codes: nothing to find that way).
"""
from __future__ import annotations

from aiohttp import web

from central.citizen.i18n import T_
from central.citizen.pages import citizen_language, render_citizen
from central.live.limits import Buckets, Rate, retry_after_s
from central.web.client import client_address

# Booking: a citizen books once, perhaps again for a relative; five in a row, then one every 10 minutes.
BOOKINGS = Rate(capacity=5, per_second=1 / 600)
# Unknown codes (a typo, an old link): ten in a row, then one a minute.
CODE_MISSES = Rate(capacity=10, per_second=1 / 60)


class BookingLimits:
    def __init__(self) -> None:
        self.bookings = Buckets(BOOKINGS)
        self.code_misses = Buckets(CODE_MISSES)


def limits(request: web.Request) -> BookingLimits:
    return request.app["booking_limits"]


def address(request: web.Request) -> str:
    return client_address(request, request.app["config"].trusted_proxies)


def refuse_if_limited(request: web.Request, buckets: Buckets) -> None:
    """Take a token for this address; raise a 429 page (in the citizen's language) when none is left."""
    if wait := buckets.take(address(request)):
        seconds = retry_after_s(wait)
        lang = citizen_language(request)
        page = render_citizen(request, "citizen/booking_problem.html", status=429, message=lang.gettext(T_(
            "Too many attempts from your connection. Please try again in %(minutes)s minutes."),
            minutes=max(1, round(seconds / 60))))
        raise web.HTTPTooManyRequests(text=page.text, content_type="text/html",
                                      headers={"Retry-After": str(seconds), "Cache-Control": "no-store"})


def check_origin(request: web.Request) -> None:
    """A form of another site must not book or cancel in the citizen's name (browsers send Origin with POSTs)."""
    origin = request.headers.get("Origin")
    if origin is not None and origin not in (own_origin(request), request.app["config"].public_url):
        raise web.HTTPForbidden(text="this form must be sent from central's own booking page\n")


def own_origin(request: web.Request) -> str:
    return f"{request.scheme}://{request.host}"


def public_base(request: web.Request) -> str:
    """The address citizens reach central at: public_url when configured, else what this request used."""
    return request.app["config"].public_url or own_origin(request)


def booking_link(request: web.Request, code: str) -> str:
    return f"{public_base(request)}/booking/{code}"
