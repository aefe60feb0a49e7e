"""Admin: update bundles. Upload (streamed to disk, checked off the event loop), list, remove.

A refused upload shows why, in the admin's language (by its update fault) with the check's own words
below; nothing of it is kept. The file arrives as multipart form data: the form's first field is the
CSRF token, checked before a byte of the file is read (central.web.auth leaves this one path to us).
"""
from __future__ import annotations

import datetime as dt
import logging
from zoneinfo import ZoneInfo

from aiohttp import web

from central.updates.library import COMMAND_LINE, BundleRefused, BundleUnavailable
from central.web import auth
from central.web.admin import forms
from central.web.auth import admin_required

log = logging.getLogger(__name__)

LIST = "/admin/bundles"
UPLOAD = LIST + "/upload"
CHUNK = 1024 * 1024
FORM_SLACK = 64 * 1024  # the multipart framing and the CSRF field around the file


def _when(request: web.Request, unix_s: float) -> str:
    return dt.datetime.fromtimestamp(unix_s, ZoneInfo(request.app["config"].timezone)).strftime("%Y-%m-%d %H:%M")


async def _list_page(request: web.Request, *, refused: BundleRefused | None = None, error: str | None = None,
                     status: int = 200) -> web.Response:
    library = request.app["bundles"]
    rows = [{"id": b.id, "version": b.version, "size_mb": f"{b.size_bytes / 1e6:.1f}", "sha256": b.sha256,
             "signer": b.signer, "signed_at": _when(request, b.signed_at), "uploaded_at": _when(request, b.uploaded_at),
             "uploaded_by": b.uploaded_by, "by_command_line": b.uploaded_by == COMMAND_LINE, "path": b.path} for b in await library.list()]
    return forms.page(request, "admin/bundles.html", status=status, bundles=rows, problem=library.problem(),
                      max_mb=library.max_bytes // (1024 * 1024), compatible=library.compatible,
                      refused_fault=refused.fault if refused else None, refused_detail=str(refused) if refused else None,
                      error=error)


@admin_required
async def list_page(request: web.Request) -> web.Response:
    return await _list_page(request)


@admin_required
async def upload(request: web.Request) -> web.Response:
    library = request.app["bundles"]
    if request.content_length is not None and request.content_length > library.max_bytes + FORM_SLACK:
        too_large = BundleRefused("bundle_corrupt", f"the file is larger than central takes "
                                  f"({library.max_bytes // (1024 * 1024)} MB, bundle_max_mb in its settings)")
        return await _too_large(request, too_large)
    try:
        reader = await request.multipart()
        field = await reader.next()
        if field is None or field.name != "csrf_token" or not auth.csrf_matches(request, await field.text()):
            raise web.HTTPForbidden(text="The form has expired. Reload the page and try again.\n")
        field = await reader.next()
        if field is None or field.name != "bundle" or not field.filename:
            _ = forms.translator(request)
            return await _list_page(request, error=_("Choose a bundle file (.raucb)."), status=400)
        receiving = library.receive()
        try:
            while chunk := await field.read_chunk(CHUNK):
                await receiving.write(chunk)
        except BaseException:
            await receiving.discard()
            raise
        info = await receiving.finish(request["staff"].username)
    except BundleRefused as exc:
        if "larger than central takes" in str(exc):
            return await _too_large(request, exc)
        log.info("bundle upload refused: %s", exc.fault)
        return await _list_page(request, refused=exc, status=400)
    except BundleUnavailable as exc:
        return await _list_page(request, error=str(exc), status=409)
    await request.app["db"].audit.record(request["staff"].id, "bundle.add", f"bundle:{info.id}",
                                         f"{info.version} ({info.sha256[:12]})")
    raise forms.see_other(LIST, "bundle-added")


async def _too_large(request: web.Request, exc: BundleRefused) -> web.Response:
    response = await _list_page(request, refused=exc, status=413)
    response.force_close()  # the rest of the upload is not read: end the connection after this answer
    return response


@admin_required
async def remove(request: web.Request) -> web.Response:
    library = request.app["bundles"]
    try:
        info = await library.remove(int(request.match_info["bundle_id"]))
    except BundleUnavailable as exc:
        return await _list_page(request, error=str(exc), status=409)
    await request.app["db"].audit.record(request["staff"].id, "bundle.remove", f"bundle:{info.id}", info.version)
    raise forms.see_other(LIST, "bundle-removed")


def routes() -> list[web.RouteDef]:
    return [web.get(LIST, list_page), web.post(UPLOAD, upload),
            web.post(LIST + "/{bundle_id:[0-9]{1,10}}/remove", remove)]
