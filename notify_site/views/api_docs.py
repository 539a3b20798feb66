"""/api/v1/docs (issue 20): the OpenAPI document (/api/v1/openapi.json) rendered for people by
Swagger UI, whose files come from the PyPI package swagger-ui-bundle and are served by the site
itself: no CDN, nothing fetched from elsewhere, and the Content-Security-Policy stays strict
(Swagger UI is started by a script file of the site's, static/js/api-docs.js; its validator,
which would call swagger.io, is off). Public, like the document itself."""

from __future__ import annotations

from flask import Blueprint, abort, render_template, send_from_directory
from swagger_ui_bundle import swagger_ui_path

bp = Blueprint("api_docs", __name__)

#: The only files of the bundle the page needs (the package holds more: maps, an index page).
ASSETS = {"swagger-ui.css", "swagger-ui-bundle.js"}


@bp.get("/api/v1/docs")
def index():
    return render_template("api_docs/index.html")


@bp.get("/api/v1/docs/assets/<name>")
def asset(name: str):
    if name not in ASSETS:
        abort(404)
    return send_from_directory(swagger_ui_path, name, max_age=86400)
