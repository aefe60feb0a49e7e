"""Admin: kiosks and their secret tokens (shown once, stored hashed)."""
from __future__ import annotations

from aiohttp import web

from central.storage.database import Kiosk
from central.web.admin import forms
from central.web.admin.forms import FieldError
from central.web.auth import admin_required

LIST = "/admin/kiosks"


async def _list_page(request: web.Request, *, location: str = "", error: str | None = None,
                     status: int = 200) -> web.Response:
    kiosks = await request.app["db"].kiosks()
    online = set(request.app["hub"].kiosks)
    return forms.page(request, "admin/kiosks.html", status=status, kiosks=kiosks, online=online,
                      location=location, error=error)


@admin_required
async def list_page(request: web.Request) -> web.Response:
    return await _list_page(request)


@admin_required
async def create(request: web.Request) -> web.Response:
    _ = forms.translator(request)
    location = forms.text(await request.post(), "location", 1000)
    try:
        forms.required(location, _, 120)
    except FieldError as exc:
        return await _list_page(request, location=location, error=str(exc), status=400)
    kiosk_id, token = await request.app["db"].create_kiosk(location)
    config = request.app["config"]
    server = (config.public_url or f"{request.scheme}://{request.host}").rstrip("/")
    # The one response that ever carries the token: not a redirect, and never cached.
    return forms.page(request, "admin/kiosk_created.html", kiosk=Kiosk(kiosk_id, location, False), token=token,
                      server=server)


async def _set_revoked(request: web.Request, revoked: bool) -> web.Response:
    kiosk_id = int(request.match_info["kiosk_id"])
    if not any(k.id == kiosk_id for k in await request.app["db"].kiosks()):
        raise web.HTTPNotFound(text="There is no such kiosk.\n")
    await request.app["db"].set_kiosk_revoked(kiosk_id, revoked)
    if revoked and (peer := request.app["hub"].kiosks.get(kiosk_id)) is not None:
        peer.link.close()  # its token no longer works; end the live connection too
    raise forms.see_other(LIST, "kiosk-revoked" if revoked else "kiosk-enabled")


@admin_required
async def revoke(request: web.Request) -> web.Response:
    return await _set_revoked(request, True)


@admin_required
async def enable(request: web.Request) -> web.Response:
    return await _set_revoked(request, False)


def routes() -> list[web.RouteDef]:
    kiosk = "{kiosk_id:[0-9]{1,9}}"
    return [web.get(LIST, list_page), web.get(f"{LIST}/new", list_page), web.post(f"{LIST}/new", create),
            web.post(f"{LIST}/{kiosk}/revoke", revoke), web.post(f"{LIST}/{kiosk}/enable", enable)]
