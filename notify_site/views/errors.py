"""The site's error handlers (registered by ``create_app``): JSON for API callers, a page for
people."""

from __future__ import annotations

import logging

from flask import current_app, render_template, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, InternalServerError

from notify_site.extensions import db
from notify_site.serialisers import error_response

log = logging.getLogger(__name__)

# What people read for an HTTP error raised without a message of its own (Werkzeug's own
# descriptions are English only). The JSON ``code`` stays Werkzeug's English name.
GENERIC_MESSAGES = {
    400: _l("The request could not be understood. Check it and try again."),
    401: _l("Sign in to see this page."),
    403: _l("You are not allowed to see this page."),
    404: _l("There is no such page. Check the address, or start again from the home page."),
    405: _l("This address does not accept that kind of request."),
    413: _l("What you sent is too large."),
    429: _l("Too many requests. Wait a moment and try again."),
    500: _l("Something went wrong on our side. Try again in a moment."),
    503: _l("The site is briefly unavailable. Try again in a moment."),
}


def describe(error: HTTPException) -> str:
    """The error's own message (the views pass translated ones), else a translated generic one."""
    status = error.code or 500
    default = type(error).description
    if error.description and error.description != default:
        return error.description
    generic = GENERIC_MESSAGES.get(status)
    return str(generic) if generic is not None else (error.description or error.name)


def wants_json() -> bool:
    """API paths and every ``*.json`` path always answer JSON; elsewhere, the Accept header
    decides. (A script polling ``/send/status.json`` once got an HTML 401 page.)"""
    if request.path.startswith("/api/") or request.path.endswith(".json"):
        return True
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return (
        best == "application/json"
        and request.accept_mimetypes[best] > (request.accept_mimetypes["text/html"])
    )


def is_relay_api() -> bool:
    """Paths of the built-in relay that speak LINE Notify's JSON ``{status, message}``: its
    API, its token endpoint and its ``*.json`` paths (the inbox).

    A 404 or 405 there happens at routing, before the relay's own handlers could answer, so
    it is shaped here, as the relay's handlers shape their own errors.
    """
    if not current_app.config.get("RELAY_ENABLED"):
        return False
    prefix = current_app.config["RELAY_URL_PREFIX"]
    path = request.path
    return path.startswith((f"{prefix}/api/", f"{prefix}/oauth/token")) or (
        path.startswith(f"{prefix}/") and path.endswith(".json")
    )


def _render(status: int, code: str, message: str):
    if is_relay_api():
        return {"status": status, "message": message}, status
    if wants_json():
        return error_response(status, code, message)
    return render_template("errors/error.html", status=status, message=message), status


def csrf_error(error: CSRFError):
    return _render(
        400,
        "csrf_failed",
        _("The form expired or was not sent from this site. Reload the page and try again."),
    )


def http_error(error: HTTPException):
    code = (error.name or "error").lower().replace(" ", "_")
    # The relay's API answers as LINE Notify did: in English, whatever the browser asks.
    message = error.description or error.name if is_relay_api() else describe(error)
    return _render(error.code or 500, code, message)


def unexpected_error(error: Exception):
    db.session.rollback()
    log.exception("unhandled error on %s %s", request.method, request.path)
    if is_relay_api():
        return _render(500, "internal_error", InternalServerError.description)
    return _render(500, "internal_error", str(GENERIC_MESSAGES[500]))
