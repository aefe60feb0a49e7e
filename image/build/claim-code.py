#!/usr/bin/python3
"""The boot test's admin: claims the code the unit shows, in central's admin pages, as a person would.

    claim-code.py --console LOG --central URL --credentials DEMO.json --location TEXT
                  [--departments SLUG,SLUG] [--timeout S]

Follows the serial console LOG until the guest's self-test prints ``AMTSKLINGEL-ENROL-CODE XXXX-XXXX``
(the code on the unit's screen), logs in to central as the demo admin (the login form's CSRF token
and cookie, then the session cookie), opens ``/admin/kiosks/enrol?code=…`` (what the unit's QR code
links to) and submits its form with the location and departments. Central then hands the unit its
token over the unit's own connection. A code that expired meanwhile is not an error: the unit shows
a new one, which is claimed instead.
Prints ``AMTSKLINGEL-SELFTEST PASS|FAIL enrol-claimed: …`` for the boot test's results; exit 0 on PASS.
Standard library only.
"""
from __future__ import annotations

import argparse
import http.cookiejar
import json
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from html.parser import HTMLParser
from pathlib import Path

CODE_LINE = re.compile(rb"AMTSKLINGEL-ENROL-CODE ([2-9A-HJ-NP-Z]{4}-[2-9A-HJ-NP-Z]{4})")
CLAIM_PATH = "/admin/kiosks/enrol"
TAG = "AMTSKLINGEL-SELFTEST"


class ClaimError(Exception):
    """Why the code could not be claimed, for the boot test's log."""


class _Form(HTMLParser):
    """The fields of the enrolment form (``data-testid="enrol-form"``) and the page's error messages."""

    def __init__(self) -> None:
        super().__init__()
        self.inside = False
        self.fields: list[tuple[str, str]] = []        # hidden and text inputs: (name, value)
        self.checkboxes: list[tuple[str, str, bool]] = []  # (name, value, checked)
        self.errors: list[str] = []
        self._error_depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form" and a.get("data-testid") == "enrol-form":
            self.inside = True
        if tag == "p" and ("field-error" in a.get("class", "").split() or a.get("role") == "alert"):
            self._error_depth = 1
            self.errors.append("")
        if not self.inside or tag != "input" or "name" not in a:
            return
        if a.get("type") == "checkbox":
            self.checkboxes.append((a["name"], a.get("value", "on"), "checked" in a))
        else:
            self.fields.append((a["name"], a.get("value", "")))

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self.inside = False
        if tag == "p":
            self._error_depth = 0

    def handle_data(self, data: str) -> None:
        if self._error_depth:
            self.errors[-1] += data.strip()


class Admin:
    """A browser session of central's admin: cookies kept, redirects followed."""

    def __init__(self, central: str) -> None:
        self.central = central.rstrip("/")
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))

    def _open(self, path: str, form: list[tuple[str, str]] | None = None) -> tuple[int, str, str]:
        data = urllib.parse.urlencode(form).encode() if form is not None else None
        # Central's messages in English, for the boot test's log.
        request = urllib.request.Request(self.central + path, data=data, headers={"Accept-Language": "en"})
        try:
            with self.opener.open(request, timeout=30) as response:
                return response.status, response.geturl(), response.read().decode()
        except urllib.error.HTTPError as exc:  # the forms answer 400 with the page and its messages
            return exc.code, exc.geturl(), exc.read().decode(errors="replace")

    def log_in(self, user: str, password: str) -> None:
        _status, _url, page = self._open("/login")
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page)
        if not csrf:
            raise ClaimError("central's login page has no CSRF field")
        status, url, page = self._open("/login", [("csrf_token", csrf.group(1)), ("username", user),
                                                  ("password", password), ("next", CLAIM_PATH)])
        if status != 200 or urllib.parse.urlsplit(url).path == "/login":
            raise ClaimError(f"logging in as {user} failed (HTTP {status})")

    def claim(self, code: str, location: str, departments: list[str] | None) -> str:
        """Claims ``code``; returns what the page said. ClaimError when central refused."""
        status, _url, page = self._open(f"{CLAIM_PATH}?{urllib.parse.urlencode({'code': code})}")
        form = _Form()
        form.feed(page)
        if status != 200 or not form.fields:
            raise ClaimError(f"code {code}: HTTP {status}: {' '.join(form.errors) or 'no enrolment form'}")
        fields = [(name, location if name == "location" else value) for name, value in form.fields]
        offered = [value for name, value, _checked in form.checkboxes if name == "departments"]
        if departments is not None and (unknown := set(departments) - set(offered)):
            raise ClaimError(f"departments {', '.join(sorted(unknown))} not offered by central ({', '.join(offered)})")
        fields += [(name, value) for name, value, checked in form.checkboxes
                   if name == "departments" and (value in departments if departments is not None else checked)]
        status, _url, page = self._open(CLAIM_PATH, fields)
        if status != 200 or 'data-testid="enrolled"' not in page:
            result = _Form()
            result.feed(page)
            raise ClaimError(f"code {code}: HTTP {status}: {' '.join(result.errors) or 'not enrolled'}")
        return re.sub(r"<[^>]+>", "", page.split('data-testid="enrolled">', 1)[1].split("</h1>", 1)[0]).strip()


def codes_in(console: Path, seen: set[str]) -> list[str]:
    """Codes the console shows that were not claimed yet, newest last."""
    try:
        text = console.read_bytes()
    except FileNotFoundError:
        return []
    return [c for c in dict.fromkeys(m.decode() for m in CODE_LINE.findall(text)) if c not in seen]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--console", type=Path, required=True)
    parser.add_argument("--central", required=True)
    parser.add_argument("--credentials", type=Path, required=True, help="demo-data's JSON (admin_user, admin_password)")
    parser.add_argument("--location", required=True)
    parser.add_argument("--departments", help="comma-separated slugs (default: the form's, i.e. all)")
    parser.add_argument("--timeout", type=float, default=1200)
    args = parser.parse_args(argv)
    credentials = json.loads(args.credentials.read_text())
    departments = args.departments.split(",") if args.departments else None
    deadline = time.monotonic() + args.timeout
    tried: set[str] = set()
    failures: list[str] = []
    started = time.monotonic()
    while time.monotonic() < deadline:
        fresh = codes_in(args.console, tried)
        if not fresh:
            time.sleep(1)
            continue
        code = fresh[-1]
        tried.update(fresh)
        try:
            admin = Admin(args.central)
            admin.log_in(credentials["admin_user"], credentials["admin_password"])
            said = admin.claim(code, args.location, departments)
        except (ClaimError, OSError) as exc:
            failures.append(str(exc))  # an expired code: the unit shows a new one
            print(f"claim-code: {exc}", file=sys.stderr, flush=True)
            continue
        print(f"{TAG} PASS enrol-claimed: code {code} seen on the console after {time.monotonic() - started:.0f} s "
              f"and claimed as the demo admin: {said!r}, departments {','.join(departments or ['all'])}", flush=True)
        return 0
    print(f"{TAG} FAIL enrol-claimed: {'; '.join(failures) or 'no AMTSKLINGEL-ENROL-CODE line on the console'} "
          f"within {args.timeout:.0f} s", flush=True)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
