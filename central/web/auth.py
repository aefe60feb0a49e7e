"""Staff login: argon2 passwords, server-side sessions, CSRF on every state change.

The session cookie is HttpOnly, SameSite=Strict and (outside tests) Secure; it
holds a random token whose hash is the only thing in the database.
"""
from __future__ import annotations

import hmac

from aiohttp import web

from central.i18n import negotiate
from central.web.redirects import login_url, safe_next

SESSION_COOKIE = "ak_session"
LOGIN_CSRF_COOKIE = "ak_login_csrf"
LANG_COOKIE = "ak_lang"

SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
CSRF_EXEMPT = {"/login", "/ws/kiosk", "/language"}
# Multipart uploads: the handler checks the form's first field (csrf_matches) before it reads the file,
# so a large file is never read into memory here to find the token.
CSRF_IN_HANDLER = {"/admin/bundles/upload"}
# Public forms of citizens, who have no session: their handlers check a token of their own
# (central/web/booking_guard.py check_form).
PUBLIC_FORMS = ("/booking/",)


@web.middleware
async def session_middleware(request: web.Request, handler):
    request["locale"] = negotiate(request.cookies.get(LANG_COOKIE), request.headers.get("Accept-Language"))
    token = request.cookies.get(SESSION_COOKIE)
    if token and not request.path.startswith("/static/"):  # scripts and styles need no session lookup
        found = await request.app["db"].session(token)
        if found:
            request["staff"], request["csrf_token"] = found
    if (request.method not in SAFE_METHODS and request.path not in CSRF_EXEMPT | CSRF_IN_HANDLER
            and not request.path.startswith(PUBLIC_FORMS)):
        sent = request.headers.get("X-CSRF-Token")
        if sent is None and request.content_type == "application/x-www-form-urlencoded":
            sent = (await request.post()).get("csrf_token")
        if not csrf_matches(request, sent):
            raise web.HTTPForbidden(text="The form has expired. Reload the page and try again.\n")
    response = await handler(request)
    return response


def csrf_matches(request: web.Request, sent: object) -> bool:
    expected = request.get("csrf_token")
    return bool(expected and sent) and hmac.compare_digest(str(sent), expected)


@web.middleware
async def security_headers(request: web.Request, handler):
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        response = exc
    # Everything is served by central itself: no third-party scripts, fonts or frames.
    response.headers.setdefault("Content-Security-Policy",
                                "default-src 'self'; img-src 'self' data:; media-src 'self' blob:; "
                                "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    response.headers.setdefault("Permissions-Policy", "camera=(self), microphone=(self), geolocation=()")
    if isinstance(response, web.HTTPException):
        raise response
    return response


def login_required(handler):
    async def wrapped(request: web.Request):
        if request.get("staff") is None:
            raise web.HTTPFound(login_url(request.path_qs))
        return await handler(request)
    return wrapped


def admin_required(handler):
    async def wrapped(request: web.Request):
        staff = request.get("staff")
        if staff is None:
            raise web.HTTPFound(login_url(request.path_qs))
        if not staff.is_admin:
            raise web.HTTPForbidden(text="This page is for administrators.\n")
        return await handler(request)
    return wrapped


async def logout(request: web.Request) -> web.Response:
    """Log out everywhere: every session of this staff member ends, and so does their open console."""
    staff, token = request.get("staff"), request.cookies.get(SESSION_COOKIE)
    if staff is not None:
        await request.app["db"].end_sessions(staff.id)
        request.app["hub"].staff_revoked(staff.id, "you logged out")
    elif token:
        await request.app["db"].delete_session(token)
    response = web.HTTPFound("/login")
    response.del_cookie(SESSION_COOKIE, path="/")
    raise response


async def set_language(request: web.Request) -> web.Response:
    form = await request.post()
    response = web.HTTPFound(safe_next(str(form.get("next", "")), default="/"))
    response.set_cookie(LANG_COOKIE, str(form.get("lang", "de"))[:5], samesite="Lax", max_age=365 * 86400,
                        secure=request.app["config"].secure_cookies)
    raise response


def routes() -> list[web.RouteDef]:
    return [web.post("/logout", logout), web.post("/language", set_language)]
