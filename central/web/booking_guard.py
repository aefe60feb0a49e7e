"""What guards the public booking pages: per-address limits, the forms' token, and the links they make.

Limits are per address (central/web/client.py: an IPv4 address or an IPv6 /64), as token buckets
(central/live/limits.py): in this process's memory for one central, in Valkey with several centrals, so
a change of leader does not refill them (central/live/shared_limits.py). Looking up a code that does not exist costs a
token; a valid code costs nothing, so a citizen can open their booking as often as they like while
guessing codes stays at a handful a minute (2^40 codes: nothing to find that way).
"""
from __future__ import annotations

import hmac
import secrets

from aiohttp import web

from central.citizen.i18n import T_
from central.citizen.pages import citizen_language, render_citizen
from central.live.limits import Rate, retry_after_s
from central.live.shared_limits import AddressLimit, LocalLimit, ValkeyLimit
from central.web.client import client_address

# Booking: a citizen books once, perhaps again for a relative; five in a row, then one every 10 minutes.
BOOKINGS = Rate(capacity=5, per_second=1 / 600)
# Unknown codes (a typo, an old link): ten in a row, then one a minute.
CODE_MISSES = Rate(capacity=10, per_second=1 / 60)


class BookingLimits:
    def __init__(self) -> None:
        self.bookings: AddressLimit = LocalLimit(BOOKINGS)
        self.code_misses: AddressLimit = LocalLimit(CODE_MISSES)

    def share(self, client, secret: str) -> None:  # noqa: ANN001 - redis.asyncio.Redis
        """Several centrals: keep the buckets in Valkey, keyed by an HMAC of the address with ``secret``."""
        self.bookings = ValkeyLimit(client, "bookings", BOOKINGS, secret)
        self.code_misses = ValkeyLimit(client, "code_misses", CODE_MISSES, secret)


def limits(request: web.Request) -> BookingLimits:
    return request.app["booking_limits"]


def address(request: web.Request) -> str:
    return client_address(request, request.app["config"].trusted_proxies)


async def refuse_if_limited(request: web.Request, limit: AddressLimit) -> None:
    """Take a token for this address; raise a 429 page (in the citizen's language) when none is left."""
    if wait := await limit.take(address(request)):
        seconds = retry_after_s(wait)
        lang = citizen_language(request)
        page = render_citizen(request, "citizen/booking_problem.html", status=429, message=lang.gettext(T_(
            "Too many attempts from your connection. Please try again in %(minutes)s minutes."),
            minutes=max(1, round(seconds / 60))))
        raise web.HTTPTooManyRequests(text=page.text, content_type="text/html",
                                      headers={"Retry-After": str(seconds), "Cache-Control": "no-store"})


# A form of another site must not book or cancel in the citizen's name. Citizens have no session, and the
# pages send no referrer (so a browser's Origin on their forms is "null", as on a foreign sandboxed form):
# each form carries a random token that must match this cookie, which another site can neither read nor
# have sent along with its own POST (SameSite=Lax).
FORM_COOKIE = "ak_booking_form"


def form_token(request: web.Request) -> str:
    """The token for this browser's booking forms: its cookie's, or a new one (set with :func:`keep_form_token`)."""
    sent = request.cookies.get(FORM_COOKIE, "")
    return sent if 20 <= len(sent) <= 64 and sent.replace("-", "").replace("_", "").isalnum() else (
        secrets.token_urlsafe(24))


def keep_form_token(request: web.Request, response: web.StreamResponse, token: str) -> web.StreamResponse:
    if request.cookies.get(FORM_COOKIE) != token:
        response.set_cookie(FORM_COOKIE, token, httponly=True, samesite="Lax", path="/booking",
                            secure=request.app["config"].secure_cookies, max_age=86400)
    return response


def check_form(request: web.Request, form) -> None:  # noqa: ANN001 - MultiDictProxy
    cookie, sent = request.cookies.get(FORM_COOKIE, ""), str(form.get("form_token", ""))
    if not (cookie and sent and hmac.compare_digest(cookie, sent)):
        page = render_citizen(request, "citizen/booking_problem.html", status=403, message=citizen_language(
            request).gettext(T_("The form has expired. Please load the page again and send it once more.")))
        raise web.HTTPForbidden(text=page.text, content_type="text/html", headers={"Cache-Control": "no-store"})


def own_origin(request: web.Request) -> str:
    return f"{request.scheme}://{request.host}"


def public_base(request: web.Request) -> str:
    """The address citizens reach central at: public_url when configured, else what this request used."""
    return request.app["config"].public_url or own_origin(request)


def booking_link(request: web.Request, code: str) -> str:
    return f"{public_base(request)}/booking/{code}"
