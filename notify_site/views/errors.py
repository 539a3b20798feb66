"""One error handler for the whole site: JSON for API callers, a page for people."""

from __future__ import annotations

import logging

from flask import Flask, current_app, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, InternalServerError

from notify_site.extensions import db

log = logging.getLogger(__name__)


def wants_json() -> bool:
    """API paths always answer JSON; elsewhere, the Accept header decides."""
    if request.path.startswith("/api/"):
        return True
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return (
        best == "application/json"
        and request.accept_mimetypes[best] > (request.accept_mimetypes["text/html"])
    )


def is_relay_api() -> bool:
    """Paths of the built-in relay that speak LINE Notify's JSON ``{status, message}``.

    A 404 or 405 there happens at routing, before the relay's own handlers could answer, so
    it is shaped here, as a Notify client expects.
    """
    if not current_app.config.get("RELAY_ENABLED"):
        return False
    prefix = current_app.config["RELAY_URL_PREFIX"]
    return request.path.startswith((f"{prefix}/api/", f"{prefix}/oauth/token"))


def _render(status: int, code: str, message: str):
    if is_relay_api():
        return {"status": status, "message": message}, status
    if wants_json():
        return {"error": {"code": code, "message": message, "fields": {}}}, status
    return render_template("errors/error.html", status=status, message=message), status


def init_app(app: Flask) -> None:
    @app.errorhandler(CSRFError)
    def csrf_error(error: CSRFError):
        return _render(
            400,
            "csrf_failed",
            "The form expired or was not sent from this site. Reload the page and try again.",
        )

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        code = (error.name or "error").lower().replace(" ", "_")
        return _render(error.code or 500, code, error.description or error.name)

    @app.errorhandler(Exception)
    def unexpected_error(error: Exception):
        db.session.rollback()
        log.exception("unhandled error on %s %s", request.method, request.path)
        return _render(500, "internal_error", InternalServerError.description)
