"""The site's error handlers (registered by ``create_app``): JSON for API callers, a page for
people."""

from __future__ import annotations

import logging

from flask import render_template, request
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, InternalServerError

from notify_site.extensions import db
from notify_site.log_redaction import redact
from notify_site.serialisers import error_response
from notify_site.web.errors import GENERIC_MESSAGES, answer_elsewhere, describe

log = logging.getLogger(__name__)


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


def _render(status: int, code: str, message: str):
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
    answer = answer_elsewhere(error)  # the relay's API paths (notify_site/seams.py)
    if answer is not None:
        return answer
    code = (error.name or "error").lower().replace(" ", "_")
    return _render(error.code or 500, code, describe(error, json=wants_json()))


def unexpected_error(error: Exception):
    db.session.rollback()
    log.exception("unhandled error on %s %s", request.method, redact(request.path))
    answer = answer_elsewhere(InternalServerError())
    if answer is not None:
        return answer
    return _render(500, "internal_error", str(GENERIC_MESSAGES[500]))
