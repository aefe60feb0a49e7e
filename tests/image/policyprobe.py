"""Open URLs in Debian's Chromium under the kiosk's managed policy and report what happened.

Run in private mount and network namespaces, so the policy can be put where Chromium reads
it (/etc/chromium/policies/managed) and local web servers can take port 8000 without
touching this machine:

    unshare --mount --net --propagation private python -m tests.image.policyprobe POLICY.json URL...

Prints JSON {url: "loaded" | the network error | the start of what was shown instead}.
"""
from __future__ import annotations

import asyncio
import http.server
import json
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
PAGE = b"<!doctype html><title>kiosk</title><p id=ok>kiosk page</p>"
# The hosts a page might try to reach: the kiosk page itself, then others on loopback.
SERVERS = [("127.0.0.1", 8000), ("127.0.0.2", 8000), ("127.0.0.1", 8001)]


class Page(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server's naming)
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.end_headers()
        self.wfile.write(PAGE)

    def log_message(self, *args):
        pass


def install_policy(policy: Path) -> None:
    """The kiosk's policy, except DeveloperToolsAvailability: Playwright drives Chromium
    through the DevTools protocol, which that policy (rightly) shuts."""
    settings = json.loads(policy.read_text())
    settings.pop("DeveloperToolsAvailability")
    etc = Path(tempfile.mkdtemp())
    (etc / "policies/managed").mkdir(parents=True)
    (etc / "policies/managed/amtsklingel.json").write_text(json.dumps(settings))
    subprocess.run(["mount", "--bind", str(etc), "/etc/chromium"], check=True)


def serve() -> None:
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    for address in SERVERS:
        server = http.server.ThreadingHTTPServer(address, Page)
        threading.Thread(target=server.serve_forever, daemon=True).start()


async def probe(urls: list[str]) -> dict[str, str]:
    from playwright.async_api import Error, async_playwright

    results = {}
    async with async_playwright() as pw:
        # A persistent (normal) profile like the kiosk's: the policy forbids the off-the-record
        # contexts Playwright's browser.new_page() would create.
        context = await pw.chromium.launch_persistent_context(
            tempfile.mkdtemp(), executable_path=CHROMIUM, headless=True,
            args=["--no-sandbox", "--disable-gpu", "--no-first-run"])
        for url in urls:
            page = await context.new_page()  # a fresh tab each: a blocked page may close its tab
            try:
                await page.goto(url, timeout=10_000)
                if await page.locator("#ok").count():
                    results[url] = "loaded"
                else:  # Chromium's own pages show the policy block as a page, not a network error
                    text = await page.evaluate("() => document.body ? document.body.innerText : ''")
                    results[url] = "ERR_BLOCKED_BY_ADMINISTRATOR" if "BLOCKED_BY_ADMINISTRATOR" in text else text[:80]
            except Error as exc:
                results[url] = str(exc).split()[1] if "net::" in str(exc) else str(exc).splitlines()[0]
            if not page.is_closed():
                await page.close()
        await context.close()
    return results


def main() -> None:
    install_policy(Path(sys.argv[1]))
    serve()
    print(json.dumps(asyncio.run(probe(sys.argv[2:]))))


if __name__ == "__main__":
    main()
