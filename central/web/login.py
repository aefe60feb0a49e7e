"""The login page: CSRF-protected form, password checked off the event loop, attempts throttled."""
from __future__ import annotations

import hmac
import math
import secrets

from aiohttp import web

from central import passwords
from central.passwords import PasswordsBusy, PasswordWorkers
from central.web.auth import LOGIN_CSRF_COOKIE, SESSION_COOKIE
from central.web.client import client_address
from central.web.redirects import safe_next
from central.web.render import render
from central.web.throttle import LoginThrottle

MAX_USERNAME = 64
MAX_PASSWORD = 1024


async def login_page(request: web.Request) -> web.Response:
    csrf = secrets.token_urlsafe(24)
    response = _page(request, csrf, request.query.get("next"))
    response.set_cookie(LOGIN_CSRF_COOKIE, csrf, httponly=True, samesite="Strict",
                        secure=request.app["config"].secure_cookies, max_age=3600)
    return response


def _page(request: web.Request, csrf: str, next_: str | None, *, status: int = 200, error: str | None = None,
          wait_s: float = 0) -> web.Response:
    seconds = math.ceil(wait_s)
    response = render(request, "login.html", status=status, login_csrf=csrf, next=safe_next(next_), error=error,
                      wait_seconds=seconds, wait_minutes=math.ceil(seconds / 60))
    if seconds:
        response.headers["Retry-After"] = str(seconds)
    return response


async def login(request: web.Request) -> web.Response:
    form = await request.post()
    cookie_csrf = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not cookie_csrf or not hmac.compare_digest(cookie_csrf, str(form.get("csrf_token", ""))):
        raise web.HTTPForbidden(text="The login form has expired. Reload the page and try again.\n")
    username = str(form.get("username", ""))[:MAX_USERNAME].strip()
    password = str(form.get("password", ""))[:MAX_PASSWORD]
    next_ = str(form.get("next", ""))
    db = request.app["db"]
    throttle: LoginThrottle = request.app["login_throttle"]
    workers: PasswordWorkers = request.app["passwords"]

    attempt = await throttle.begin(username, client_address(request, request.app["config"].trusted_proxies))
    if attempt.wait_s > 0:
        return _page(request, cookie_csrf, next_, status=429, error="throttled", wait_s=attempt.wait_s)
    found = await db.staff_credentials(username)
    try:
        # An unknown user is checked against a dummy hash: the answer takes as long either way.
        right = await workers.verify(found[1] if found else None, password)
    except PasswordsBusy:
        await throttle.not_checked(attempt)
        return _page(request, cookie_csrf, next_, status=503, error="busy", wait_s=5)
    if not right:
        return _page(request, cookie_csrf, next_, status=401, error="wrong")
    await throttle.succeeded(attempt)
    staff_id, stored = found
    if passwords.needs_rehash(stored):
        try:
            await db.set_password_hash(staff_id, await workers.hash(password))
        except PasswordsBusy:
            pass  # the next login upgrades it
    config = request.app["config"]
    token, _csrf = await db.create_session(staff_id, config.session_hours * 3600)
    response = web.HTTPFound(safe_next(next_))
    response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="Strict", secure=config.secure_cookies,
                        max_age=int(config.session_hours * 3600), path="/")
    response.del_cookie(LOGIN_CSRF_COOKIE)
    raise response


def routes() -> list[web.RouteDef]:
    return [web.get("/login", login_page), web.post("/login", login)]
