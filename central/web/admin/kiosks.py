"""Admin: kiosks and their secret tokens (shown once, stored hashed)."""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from aiohttp import web

from central.storage.audit import kiosk_target
from central.storage.database import Kiosk
from central.web.admin import forms
from central.web.admin.forms import FieldError
from central.web.auth import admin_required

LIST = "/admin/kiosks"


async def _list_page(request: web.Request, *, location: str = "", error: str | None = None,
                     status: int = 200) -> web.Response:
    kiosks = await request.app["db"].kiosks()
    online = set(request.app["hub"].kiosks)
    reused = {kiosk_id: {"times": use.times, "last": _local_time(request, use.last_at)}
              for kiosk_id, use in (await request.app["db"].token_reuse()).items()}
    enrol_departments = [{"slug": d.slug, "name": d.name, "checked": True}
                         for d in await request.app["db"].departments()]
    return forms.page(request, "admin/kiosks.html", status=status, kiosks=kiosks, online=online, reused=reused,
                      location=location, error=error, units=await request.app["db"].kiosk_units.for_kiosks(),
                      enrol_departments=enrol_departments)


def _local_time(request: web.Request, unix_s: float) -> str:
    zone = ZoneInfo(request.app["config"].timezone)
    return dt.datetime.fromtimestamp(unix_s, zone).strftime("%Y-%m-%d %H:%M")


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
    await request.app["db"].audit.record(request["staff"].id, "kiosk.create", kiosk_target(kiosk_id))
    return _token_page(request, Kiosk(kiosk_id, location, False), token, renewed=False)


async def _find(request: web.Request) -> Kiosk:
    kiosk_id = int(request.match_info["kiosk_id"])
    found = next((k for k in await request.app["db"].kiosks() if k.id == kiosk_id), None)
    if found is None:
        raise web.HTTPNotFound(text="There is no such kiosk.\n")
    return found


def _disconnect(request: web.Request, kiosk_id: int) -> None:
    if (peer := request.app["hub"].kiosks.get(kiosk_id)) is not None:
        peer.link.close()  # its token no longer works; end the live connection too


@admin_required
async def revoke(request: web.Request) -> web.Response:
    kiosk = await _find(request)
    await request.app["db"].revoke_kiosk(kiosk.id)
    await request.app["db"].audit.record(request["staff"].id, "kiosk.revoke", kiosk_target(kiosk.id))
    _disconnect(request, kiosk.id)
    raise forms.see_other(LIST, "kiosk-revoked")


@admin_required
async def new_token(request: web.Request) -> web.Response:
    """Revoked or not, the kiosk gets a new token, shown once; the old one never works again."""
    kiosk = await _find(request)
    token = await request.app["db"].new_kiosk_token(kiosk.id)
    await request.app["db"].forget_token_reuse(kiosk.id)
    await request.app["db"].audit.record(request["staff"].id, "kiosk.token", kiosk_target(kiosk.id))
    _disconnect(request, kiosk.id)
    return _token_page(request, Kiosk(kiosk.id, kiosk.location, False), token, renewed=True)


def _token_page(request: web.Request, kiosk: Kiosk, token: str, *, renewed: bool) -> web.Response:
    config = request.app["config"]
    server = (config.public_url or f"{request.scheme}://{request.host}").rstrip("/")
    # The one response that ever carries the token: not a redirect, and never cached.
    return forms.page(request, "admin/kiosk_created.html", kiosk=kiosk, token=token, server=server, renewed=renewed)


def routes() -> list[web.RouteDef]:
    kiosk = "{kiosk_id:[0-9]{1,9}}"
    return [web.get(LIST, list_page), web.get(f"{LIST}/new", list_page), web.post(f"{LIST}/new", create),
            web.post(f"{LIST}/{kiosk}/revoke", revoke), web.post(f"{LIST}/{kiosk}/token", new_token)]
