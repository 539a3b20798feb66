"""How the relay answers errors: LINE Notify's JSON on its API, its own pages for people.

The API and token endpoints always answer JSON ``{"status": N, "message": "..."}`` — also
for a body over the size limit (413) and for unexpected errors (500); an error raised at
routing on those paths (a 404, a 405), before any blueprint is known, is answered the same
way through the app's error seam (:func:`routing_error_answer`, ``notify_site/seams.py``).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from flask import Response, current_app, g, render_template, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from notify_site.extensions import db
from notify_site.relay.errors import (
    BudgetExceededError,
    InvalidTokenError,
    RateLimitExceededError,
    RelayError,
)
from notify_site.relay.views.blueprint import bp
from notify_site.web.errors import describe

log = logging.getLogger(__name__)

# Endpoints that answer JSON, errors included.
JSON_ENDPOINTS = frozenset(
    {
        "relay.token",
        "relay.api_notify",
        "relay.api_status",
        "relay.api_revoke",
        "relay.api_message",
        "relay.inbox_json",
        "relay.line_webhook",
        "relay.line_pairing",
    }
)

# The title of a relay error page (Werkzeug's names are English only).
_ERROR_TITLES = {
    400: _l("Bad request"),
    403: _l("Not allowed"),
    404: _l("Not found"),
    405: _l("Method not allowed"),
    413: _l("Too large"),
    429: _l("Too many requests"),
}


#: What LINE Notify's API answered with (some scripts compare the header as text).
NOTIFY_CONTENT_TYPE = "application/json;charset=UTF-8"


def answer(status: int, message: str, **extra: Any) -> Response:
    """The Notify API's answer: ``{"status":N,"message":"...",...}`` with status N.

    Byte for byte as LINE Notify wrote it: ``status`` first and ``message`` second (LINE's
    documentation shows that order, and some scripts compare the body as text, where Flask's
    JSON would sort the keys), no spaces, and ``application/json;charset=UTF-8``.
    """
    body = json.dumps({"status": status, "message": message, **extra}, separators=(",", ":"))
    return Response(body, status=status, content_type=NOTIFY_CONTENT_TYPE)


def error_page(status: int, title: str, message: str, hint: str = "") -> tuple[str, int]:
    """A relay page saying what went wrong (in the relay's layout, the visitor's language)."""
    page = render_template(
        "relay/error.html", status=status, title=title, message=message, hint=hint
    )
    return page, status


def _wants_json() -> bool:
    return request.endpoint in JSON_ENDPOINTS


def _error_title(status: int, name: str) -> str:
    title = _ERROR_TITLES.get(status)
    return str(title) if title is not None else name


@bp.errorhandler(RelayError)
def relay_error(error: RelayError):
    if isinstance(error, RateLimitExceededError):
        g.relay_rate_window = error.window
    if isinstance(error, BudgetExceededError):
        g.relay_line_quota = error.figures
    extra = {"reason": error.reason} if getattr(error, "reason", None) else {}
    extra.update(getattr(error, "extra", None) or {})
    response = answer(error.status, error.message, **extra)
    if isinstance(error, InvalidTokenError):
        response.headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
    return response


@bp.errorhandler(HTTPException)
def http_error(error: HTTPException):
    status = error.code or 500
    if _wants_json():
        if status == 413:
            limit = current_app.config.get("MAX_CONTENT_LENGTH")
            message = f"request body too large (the limit is {limit} bytes)"
        else:
            message = error.description or error.name
        return answer(status, message)
    if isinstance(error, CSRFError):
        return error_page(
            400,
            _("The form expired"),
            _("The form expired or was not sent from this page. Go back, reload it and try again."),
        )
    return error_page(status, _error_title(status, error.name), describe(error))


@bp.errorhandler(Exception)
def unexpected_error(error: Exception):
    db.session.rollback()
    # The traceback names the code and the SQL, never a token: tokens, codes and secrets only
    # ever reach the database hashed, and request headers are not logged.
    log.error(
        "relay: unexpected %s on %s %s",
        type(error).__name__,
        request.method,
        request.path,
        exc_info=error,
    )
    if _wants_json():
        return answer(500, "Internal server error")
    return error_page(500, _("Something went wrong"), _("The relay could not answer; try again."))


def _is_api_path() -> bool:
    """Paths of the relay that speak LINE Notify's JSON ``{status, message}``: its API, its
    token endpoint and its ``*.json`` paths (the inbox)."""
    prefix = current_app.config["RELAY_URL_PREFIX"]
    path = request.path
    return path.startswith((f"{prefix}/api/", f"{prefix}/oauth/token")) or (
        path.startswith(f"{prefix}/") and path.endswith(".json")
    )


def routing_error_answer(error: HTTPException) -> Response | None:
    """The app's error seam: on the relay's API paths, an error the app-wide handlers caught
    (a 404 or 405 at routing, before the relay's own handlers could answer) in LINE Notify's
    shape and in English, whatever the browser asks, as LINE Notify answered."""
    if not _is_api_path():
        return None
    return answer(error.code or 500, error.description or error.name)
