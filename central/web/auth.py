"""Staff login: argon2 passwords, server-side sessions, CSRF on every state change.

The session cookie is HttpOnly, SameSite=Strict and (outside tests) Secure; it
holds a random token whose hash is the only thing in the database.
"""
from __future__ import annotations

import hmac
import secrets
import time
from collections import defaultdict, deque

from aiohttp import web

from central import passwords
from central.i18n import negotiate
from central.web.render import render

SESSION_COOKIE = "ak_session"
LOGIN_CSRF_COOKIE = "ak_login_csrf"
LANG_COOKIE = "ak_lang"
FAILURES_ALLOWED = 5     # per username and 15 minutes; enough for typos, too few for guessing
FAILURE_WINDOW_S = 900

SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
CSRF_EXEMPT = {"/login", "/ws/kiosk", "/language"}


@web.middleware
async def session_middleware(request: web.Request, handler):
    request["locale"] = negotiate(request.cookies.get(LANG_COOKIE), request.headers.get("Accept-Language"))
    token = request.cookies.get(SESSION_COOKIE)
    if token and not request.path.startswith("/static/"):  # scripts and styles need no session lookup
        found = await request.app["db"].session(token)
        if found:
            request["staff"], request["csrf_token"] = found
    if request.method not in SAFE_METHODS and request.path not in CSRF_EXEMPT:
        sent = request.headers.get("X-CSRF-Token")
        if sent is None and request.content_type == "application/x-www-form-urlencoded":
            sent = (await request.post()).get("csrf_token")
        expected = request.get("csrf_token")
        if not expected or not sent or not hmac.compare_digest(str(sent), expected):
            raise web.HTTPForbidden(text="The form has expired. Reload the page and try again.\n")
    response = await handler(request)
    return response


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
            raise web.HTTPFound(f"/login?next={request.path}")
        return await handler(request)
    return wrapped


def admin_required(handler):
    async def wrapped(request: web.Request):
        staff = request.get("staff")
        if staff is None:
            raise web.HTTPFound(f"/login?next={request.path}")
        if not staff.is_admin:
            raise web.HTTPForbidden(text="This page is for administrators.\n")
        return await handler(request)
    return wrapped


class LoginThrottle:
    def __init__(self) -> None:
        self._failures: dict[str, deque[float]] = defaultdict(deque)

    def blocked(self, username: str) -> bool:
        recent = self._failures[username]
        while recent and recent[0] < time.monotonic() - FAILURE_WINDOW_S:
            recent.popleft()
        return len(recent) >= FAILURES_ALLOWED

    def failed(self, username: str) -> None:
        self._failures[username].append(time.monotonic())

    def succeeded(self, username: str) -> None:
        self._failures.pop(username, None)


def _safe_next(target: str | None) -> str:
    # Only local paths: an attacker's link must not bounce a clerk to another site.
    return target if target and target.startswith("/") and not target.startswith("//") else "/console"


async def login_page(request: web.Request) -> web.Response:
    csrf = secrets.token_urlsafe(24)
    response = render(request, "login.html", login_csrf=csrf, next=_safe_next(request.query.get("next")),
                      error=None)
    response.set_cookie(LOGIN_CSRF_COOKIE, csrf, httponly=True, samesite="Strict",
                        secure=request.app["config"].secure_cookies, max_age=3600)
    return response


async def login(request: web.Request) -> web.Response:
    form = await request.post()
    cookie_csrf = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not cookie_csrf or not hmac.compare_digest(cookie_csrf, str(form.get("csrf_token", ""))):
        raise web.HTTPForbidden(text="The login form has expired. Reload the page and try again.\n")
    username = str(form.get("username", ""))[:64].strip()
    password = str(form.get("password", ""))[:1024]
    throttle: LoginThrottle = request.app["login_throttle"]
    db = request.app["db"]
    found = None if throttle.blocked(username) else await db.staff_credentials(username)
    if found is None or not passwords.verify(found[1], password):
        if found is None:
            passwords.verify(None, password)  # same time whether or not the user exists
        throttle.failed(username)
        response = render(request, "login.html", status=401, login_csrf=cookie_csrf,
                          next=_safe_next(str(form.get("next", ""))),
                          error="throttled" if throttle.blocked(username) else "wrong")
        return response
    throttle.succeeded(username)
    staff_id, stored = found
    if passwords.needs_rehash(stored):
        await db.set_password_hash(staff_id, passwords.hash_password(password))
    config = request.app["config"]
    token, _csrf = await db.create_session(staff_id, config.session_hours * 3600)
    response = web.HTTPFound(_safe_next(str(form.get("next", ""))))
    response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="Strict", secure=config.secure_cookies,
                        max_age=int(config.session_hours * 3600), path="/")
    response.del_cookie(LOGIN_CSRF_COOKIE)
    raise response


async def logout(request: web.Request) -> web.Response:
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        await request.app["db"].delete_session(token)
    response = web.HTTPFound("/login")
    response.del_cookie(SESSION_COOKIE, path="/")
    raise response


async def set_language(request: web.Request) -> web.Response:
    form = await request.post()
    response = web.HTTPFound(_safe_next(str(form.get("next", "/"))))
    response.set_cookie(LANG_COOKIE, str(form.get("lang", "de"))[:5], samesite="Lax", max_age=365 * 86400,
                        secure=request.app["config"].secure_cookies)
    raise response


def routes() -> list[web.RouteDef]:
    return [web.get("/login", login_page), web.post("/login", login), web.post("/logout", logout),
            web.post("/language", set_language)]
