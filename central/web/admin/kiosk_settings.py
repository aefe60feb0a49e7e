"""Admin: a kiosk's remote settings, the settings for all kiosks, and actions sent to a kiosk.

Pages: ``/admin/fleet/settings`` (all kiosks), ``/admin/fleet/{id}/settings`` (one kiosk: its
settings, actions and their outcome). The fleet's detail page can show the same block by
including ``admin/_kiosk_controls.html`` with the context from :func:`controls_context`.

A kiosk's value equal to the all-kiosks value is not stored for the kiosk, so it follows later
changes made for all kiosks. Every change and every action is written to the audit log.
"""
from __future__ import annotations

from typing import Any

from aiohttp import web

from central.fleet import settings as fleet_settings
from central.storage.audit import kiosk_target
from central.storage.database import Kiosk
from central.storage.kiosk_settings import BUILT_IN, KIOSK_LANGUAGES, SettingsError
from central.web.admin import forms
from central.web.admin.forms import FieldError, Translate
from central.web.auth import admin_required
from protocol.fleet import CALL_UPLOAD_KBIT_S_RANGE

ALL = "/admin/fleet/settings"
# Each language in its own name: the admin picks what the citizen will read.
LANGUAGE_NAMES = {"de": "Deutsch", "en": "English", "tr": "Türkçe", "ar": "العربية", "uk": "Українська",
                  "ru": "Русский"}
RANGES = {"volume_pct": (0, 100), "mic_gain_db": (-20, 20), "brightness_pct": (10, 100),
          "call_upload_kbit_s": CALL_UPLOAD_KBIT_S_RANGE}


def kiosk_page(kiosk_id: int) -> str:
    """Where the kiosk's forms post (and are shown again with errors)."""
    return f"/admin/fleet/{kiosk_id}/settings"


def back_to_kiosk(kiosk_id: int, done: str) -> str:
    """After a change: the fleet's page of this kiosk, at its settings, with a success note."""
    return f"/admin/fleet/{kiosk_id}?done={done}#kiosk-settings"


async def _find(request: web.Request) -> Kiosk:
    kiosk_id = int(request.match_info["kiosk_id"])
    found = next((k for k in await request.app["db"].kiosks() if k.id == kiosk_id), None)
    if found is None:
        raise web.HTTPNotFound(text="There is no such kiosk. Go back to the fleet page.\n")
    return found


# -- form <-> values ---------------------------------------------------------------

def _form_values(settings: dict[str, Any], slugs: list[str]) -> dict[str, Any]:
    """Settings as the form shows them."""
    chosen = settings.get("departments")
    order = {slug: i + 1 for i, slug in enumerate(chosen or slugs)}
    return {"location": settings.get("location", ""), "departments_mode": "all" if chosen is None else "chosen",
            "departments": set(slugs if chosen is None else chosen), "order": order,
            "default_language": settings["default_language"], "languages": set(settings["languages"]),
            **{name: str(settings[name]) for name in RANGES},
            "screen_off_outside_hours": settings["screen_off_outside_hours"], "relay_only": settings["relay_only"]}


def _number(value: str, name: str, _: Translate) -> int:
    low, high = RANGES[name]
    try:
        number = int(value)
    except ValueError:
        number = None
    if number is None or not low <= number <= high:
        raise FieldError(_("Enter a whole number from %(low)s to %(high)s.", low=low, high=high))
    return number


def _parse(form, slugs: list[str], *, per_kiosk: bool, has_turn: bool,  # noqa: ANN001 - aiohttp's form
           _: Translate) -> tuple[dict, dict, dict]:
    """The posted form -> (values for the form again, parsed settings, errors by field).
    ``has_turn``: central hands out a TURN server (without one a relay-only kiosk connects no call)."""
    shown: dict[str, Any] = {
        "location": forms.text(form, "location", 1000), "departments_mode": form.get("departments_mode", "all"),
        "departments": {s for s in form.getall("department", []) if s in slugs},
        "order": {s: forms.text(form, f"order_{s}", 10) for s in slugs},
        "default_language": form.get("default_language", ""), "languages": set(form.getall("language", [])),
        **{name: forms.text(form, name, 10) for name in RANGES},
        "screen_off_outside_hours": form.get("screen_off_outside_hours") == "on",
        "relay_only": form.get("relay_only") == "on"}
    parsed: dict[str, Any] = {name: shown[name] for name in ("screen_off_outside_hours", "relay_only")}
    errors: dict[str, str] = {}
    if shown["relay_only"] and not has_turn:
        errors["relay_only"] = _("Central has no TURN server configured (turn_urls), so a kiosk that calls only "
                                 "through it could not connect any call. Configure coturn first (docs/deploy.md).")
    if per_kiosk:
        try:
            parsed["location"] = forms.required(shown["location"], _, 120)
        except FieldError as exc:
            errors["location"] = str(exc)
    if shown["departments_mode"] == "chosen":
        positions = {}
        for slug in shown["departments"]:
            try:
                positions[slug] = int(shown["order"][slug] or 0)
            except ValueError:
                errors["departments"] = _("The position of a department must be a whole number, e.g. 1.")
        if not shown["departments"]:
            errors["departments"] = _("Pick at least one department, or offer all of them.")
        parsed["departments"] = sorted(positions, key=lambda s: (positions[s], slugs.index(s)))
    else:
        parsed["departments"] = None
    languages = [lang for lang in KIOSK_LANGUAGES if lang in shown["languages"]]
    if not languages:
        errors["languages"] = _("Offer at least one language.")
    elif shown["default_language"] not in languages:
        errors["default_language"] = _("The language the kiosk starts in must be one of the languages offered.")
    parsed["languages"], parsed["default_language"] = languages, shown["default_language"]
    for name in RANGES:
        try:
            parsed[name] = _number(shown[name], name, _)
        except FieldError as exc:
            errors[name] = str(exc)
    return shown, parsed, errors


def _changes(before: dict[str, Any], after: dict[str, Any]) -> str:
    """A short line for the audit log: which settings changed, to what (no personal data in settings)."""
    parts = []
    for name in ("location", *BUILT_IN, "departments"):
        if name in after and before.get(name) != after[name]:
            value = after[name]
            shown = ",".join(value) if isinstance(value, list) else ("all" if value is None else str(value))
            parts.append(f"{name}={shown}")
    return "; ".join(parts) or "no change"


# -- all kiosks --------------------------------------------------------------------

async def _all_page(request: web.Request, shown: dict | None = None, errors: dict | None = None,
                    status: int = 200) -> web.Response:
    hub = request.app["hub"]
    slugs = list(hub.departments)
    if shown is None:
        shown = _form_values(await request.app["db"].kiosk_settings.defaults(), slugs)
    return forms.page(request, "admin/kiosk_settings.html", status=status, kiosk=None, values=shown,
                      errors=errors or {}, departments=_ordered(hub, shown), language_names=LANGUAGE_NAMES,
                      action_url=ALL)


def _ordered(hub, shown: dict) -> list:  # noqa: ANN001
    """Central's departments, the chosen ones first in their chosen order (for the form's list)."""
    slugs = list(hub.departments)

    def key(slug: str) -> tuple:
        try:
            position = int(shown["order"].get(slug) or 0)
        except ValueError:
            position = 0
        return (slug not in shown["departments"], position, slugs.index(slug))
    return [hub.departments[s] for s in sorted(slugs, key=key)]


@admin_required
async def all_page(request: web.Request) -> web.Response:
    return await _all_page(request)


@admin_required
async def save_all(request: web.Request) -> web.Response:
    _ = forms.translator(request)
    db, hub = request.app["db"], request.app["hub"]
    shown, parsed, errors = _parse(await request.post(), list(hub.departments), per_kiosk=False,
                                   has_turn=hub.ice.has_turn, _=_)
    if errors:
        return await _all_page(request, shown, errors, status=400)
    before = await db.kiosk_settings.defaults()
    # Values equal to the built-in ones are not stored: a later release may improve a default.
    values = {name: (None if BUILT_IN.get(name, None) == value else value) for name, value in parsed.items()}
    try:
        await db.kiosk_settings.update(None, **values)
    except SettingsError as exc:  # the form checks the same; this is the backstop
        return await _all_page(request, shown, {"form": str(exc)}, status=400)
    await db.audit.record(request["staff"].id, "settings.all", kiosk_target(None), _changes(before, parsed))
    await fleet_settings.push(request.app)
    raise forms.see_other(ALL, "settings-saved")


# -- one kiosk ---------------------------------------------------------------------

async def controls_context(request: web.Request, kiosk: Kiosk, shown: dict | None = None,
                           errors: dict | None = None) -> dict[str, Any]:
    """What ``admin/_kiosk_controls.html`` needs: the settings form, the actions and their outcome."""
    db, hub = request.app["db"], request.app["hub"]
    store = db.kiosk_settings
    defaults = await store.defaults()
    if shown is None:
        own = await store.overrides(kiosk.id)
        shown = _form_values({**defaults, **own, "location": kiosk.location}, list(hub.departments))
    outcomes = hub.fleet.state(kiosk.id).action_results
    sent = [{"action": a.action, "forced": a.forced, "at": a.at, "outcome": outcomes.get(a.action_id, "sent")}
            for a in request.app["kiosk_actions"].of(kiosk.id)]
    effective = await store.effective(kiosk.id, kiosk.location, list(hub.departments))
    return {"kiosk": kiosk, "values": shown, "errors": errors or {}, "departments": _ordered(hub, shown),
            "language_names": LANGUAGE_NAMES, "action_url": kiosk_page(kiosk.id),
            "kiosk_url": f"/admin/fleet/{kiosk.id}",
            "own": set(await store.overrides(kiosk.id)), "online": kiosk.id in hub.kiosks,
            "busy": fleet_settings.kiosk_busy(request.app, kiosk.id), "actions_sent": sent,
            "version": effective.version, "applied": hub.fleet.state(kiosk.id).settings_applied}


async def _kiosk_page(request: web.Request, kiosk: Kiosk, shown: dict | None = None, errors: dict | None = None,
                      status: int = 200, **extra: object) -> web.Response:
    context = await controls_context(request, kiosk, shown, errors)
    return forms.page(request, "admin/kiosk_settings.html", status=status, **{**context, **extra})


@admin_required
async def kiosk_settings_page(request: web.Request) -> web.Response:
    return await _kiosk_page(request, await _find(request))


@admin_required
async def save_kiosk(request: web.Request) -> web.Response:
    kiosk = await _find(request)
    _ = forms.translator(request)
    db, hub = request.app["db"], request.app["hub"]
    shown, parsed, errors = _parse(await request.post(), list(hub.departments), per_kiosk=True,
                                   has_turn=hub.ice.has_turn, _=_)
    if errors:
        return await _kiosk_page(request, kiosk, shown, errors, status=400)
    defaults = await db.kiosk_settings.defaults()
    before = {**defaults, **await db.kiosk_settings.overrides(kiosk.id), "location": kiosk.location}
    values: dict[str, Any] = {"location": parsed.pop("location")}
    for name, value in parsed.items():
        # Equal to the all-kiosks value: not the kiosk's own, so it follows later changes for all.
        values[name] = None if defaults.get(name) == value else value
    try:
        await db.kiosk_settings.update(kiosk.id, **values)
    except SettingsError as exc:
        return await _kiosk_page(request, kiosk, shown, {"form": str(exc)}, status=400)
    await db.audit.record(request["staff"].id, "settings.kiosk", kiosk_target(kiosk.id),
                          _changes(before, {**parsed, "location": values["location"]}))
    await fleet_settings.push(request.app, [kiosk.id])
    raise web.HTTPSeeOther(back_to_kiosk(kiosk.id, "settings-saved"))


@admin_required
async def reset_kiosk(request: web.Request) -> web.Response:
    """Drop every value of the kiosk's own: it follows the settings for all kiosks again."""
    kiosk = await _find(request)
    db = request.app["db"]
    own = await db.kiosk_settings.overrides(kiosk.id)
    if own:
        await db.kiosk_settings.update(kiosk.id, **dict.fromkeys(own))
        await db.audit.record(request["staff"].id, "settings.reset", kiosk_target(kiosk.id), ",".join(sorted(own)))
        await fleet_settings.push(request.app, [kiosk.id])
    raise web.HTTPSeeOther(back_to_kiosk(kiosk.id, "settings-reset"))


@admin_required
async def action(request: web.Request) -> web.Response:
    """Self-test, restart or reboot. With a citizen at the kiosk, only after the admin confirmed it."""
    kiosk = await _find(request)
    _ = forms.translator(request)
    form = await request.post()
    name = str(form.get("action", ""))
    if name not in fleet_settings.ACTIONS:
        return await _kiosk_page(request, kiosk, status=400, action_error=_("Choose one of the actions offered."))
    force = form.get("force") == "yes"
    if kiosk.id not in request.app["hub"].kiosks:
        return await _kiosk_page(request, kiosk, status=409, action_error=_(
            "The kiosk is not connected, so it cannot be reached. Try again once it is online."))
    if fleet_settings.kiosk_busy(request.app, kiosk.id) and not force:
        return await _kiosk_page(request, kiosk, confirm=name)
    fleet_settings.send_action(request.app, kiosk.id, name, force=force)
    await request.app["db"].audit.record(request["staff"].id, f"kiosk.{name}", kiosk_target(kiosk.id),
                                         "forced" if force else "")
    raise web.HTTPSeeOther(back_to_kiosk(kiosk.id, "action-sent"))


def routes() -> list[web.RouteDef]:
    kiosk = "/admin/fleet/{kiosk_id:[0-9]{1,9}}"
    return [web.get(ALL, all_page), web.post(ALL, save_all),
            web.get(f"{kiosk}/settings", kiosk_settings_page), web.post(f"{kiosk}/settings", save_kiosk),
            web.post(f"{kiosk}/settings/reset", reset_kiosk), web.post(f"{kiosk}/action", action)]
