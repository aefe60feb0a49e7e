"""City IT in central's admin pages, for the update test (image/build/update-central.py): logs in as
the demo admin (the login form's CSRF token, then the session cookie) and uses the pages as a person
would. Standard library only."""
from __future__ import annotations

import html
import http.cookiejar
import re
import urllib.error
import urllib.parse
import urllib.request

UPDATES = "/admin/updates"


class AdminError(Exception):
    """What central answered instead, for the test's log."""


def _text(page: str) -> str:
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", page))).strip()


class Admin:
    def __init__(self, central: str) -> None:
        self.central = central.rstrip("/")
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))

    def open(self, path: str, form: list[tuple[str, str]] | None = None,
             headers: dict[str, str] | None = None) -> tuple[int, str, str]:
        data = urllib.parse.urlencode(form).encode() if form is not None else None
        request = urllib.request.Request(self.central + path, data=data,
                                         headers={"Accept-Language": "en", **(headers or {})})
        try:
            with self.opener.open(request, timeout=30) as response:
                return response.status, response.geturl(), response.read().decode()
        except urllib.error.HTTPError as exc:  # forms answer 400/409 with the page and its message
            return exc.code, exc.geturl(), exc.read().decode(errors="replace")

    def get_text(self, path: str, bearer: str | None = None) -> str:
        status, _url, body = self.open(path, headers={"Authorization": f"Bearer {bearer}"} if bearer else None)
        if status != 200:
            raise AdminError(f"GET {path}: HTTP {status}: {body[:200]}")
        return body

    def _csrf(self, page: str) -> str:
        found = re.search(r'name="csrf_token" value="([^"]+)"', page)
        if not found:
            raise AdminError("the page has no CSRF field")
        return found.group(1)

    def log_in(self, user: str, password: str) -> None:
        _status, _url, page = self.open("/login")
        status, url, _page = self.open("/login", [("csrf_token", self._csrf(page)), ("username", user),
                                                  ("password", password), ("next", "/admin")])
        if status != 200 or urllib.parse.urlsplit(url).path == "/login":
            raise AdminError(f"logging in as {user} failed (HTTP {status})")

    def start_rollout(self, bundle_id: str, kiosk_ids: list[str], window: str = "now") -> str:
        """The updates page's "Start rollout": the bundle to these canary kiosks; what the page then says."""
        _status, _url, page = self.open(UPDATES)
        form = [("csrf_token", self._csrf(page)), ("bundle", str(bundle_id)), ("window", window), ("max_kbit_s", "")]
        form += [("canary", str(k)) for k in kiosk_ids]
        status, url, page = self.open(UPDATES + "/start", form)
        if status != 200 or urllib.parse.urlsplit(url).path != UPDATES:
            errors = re.findall(r'<p[^>]*(?:role="alert"|class="[^"]*error[^"]*")[^>]*>(.*?)</p>', page, re.S)
            raise AdminError(f"starting the rollout of bundle {bundle_id}: HTTP {status}: "
                             f"{' '.join(_text(e) for e in errors) or _text(page)[:300]}")
        return "rollout started"

    def fleet_update(self, kiosk_id: str) -> str:
        """The kiosk's "Update" line on its fleet page, as city IT reads it."""
        _status, _url, page = self.open(f"/admin/fleet/{kiosk_id}")
        found = re.search(r'data-testid="update">(.*?)</dd>', page, re.S)
        return _text(found.group(1)) if found else ""

    def pause_reason(self) -> str:
        """Why the live rollout paused, as the updates page says it ('' when it did not)."""
        _status, _url, page = self.open(UPDATES)
        found = re.search(r'data-testid="pause[^"]*"[^>]*>(.*?)</', page, re.S)
        return _text(found.group(1)) if found else ""
