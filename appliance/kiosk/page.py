"""The page itself and the translations its script asks for."""
from __future__ import annotations

import json

from flask import Blueprint, abort, current_app, jsonify, render_template

from appliance.kiosk.i18n import Catalogues

bp = Blueprint("page", __name__)


def catalogues() -> Catalogues:
    return current_app.extensions["kiosk.catalogues"]


@bp.get("/")
def index():
    cats = catalogues()
    language = cats.get(current_app.extensions["kiosk.bridge"].current_view().get("language"))
    boot = {"catalogue": language.as_json(), "languages": cats.codes}
    return render_template(
        "kiosk.html", language=language, languages=[cats[code] for code in cats.codes],
        # JSON is data, not code, so the CSP allows it; "<" is escaped so no text can end the element.
        boot_json=json.dumps(boot, ensure_ascii=False).replace("<", "\\u003c"),
    )


@bp.get("/i18n/<lang>.json")
def catalogue(lang: str):
    cats = catalogues()
    if lang not in cats:
        abort(404)
    return jsonify(cats[lang].as_json())
