"""Errors of the JSON API: always ``{"error": {"code", "message", "fields"}}``, never HTML.

``code`` is a stable English identifier for programs (``connection_not_found``), ``message``
is for people, and ``fields`` maps each offending request field to what is wrong with it;
the envelope is the site's one (:func:`notify_site.serialisers.error_response`). The handlers
are the API blueprint's own, so the site's HTML pages keep their HTML errors.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Mapping
from typing import Any

from flask import Blueprint, request
from flask_babel import gettext
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from werkzeug.exceptions import HTTPException

from notify_site.extensions import db
from notify_site.log_redaction import redact
from notify_site.serialisers import error_response
from notify_site.web.errors import describe

log = logging.getLogger(__name__)

# Seconds a client should wait before retrying while the database is unreachable.
RETRY_AFTER_SECONDS = 5
REALM = 'Bearer realm="notify_site"'


class ApiError(Exception):
    """An answer other than success: raised by views, turned into JSON by the handlers."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        fields: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.fields = dict(fields or {})
        self.headers = dict(headers or {})


def unauthorized(code: str, message: str, *, invalid: bool) -> ApiError:
    """A 401 with the ``WWW-Authenticate`` challenge of RFC 6750."""
    challenge = f'{REALM}, error="invalid_token"' if invalid else REALM
    return ApiError(401, code, message, headers={"WWW-Authenticate": challenge})


def N_(text: str) -> str:  # noqa: N802 - the conventional name of gettext's no-op marker
    """Mark a message for extraction; :func:`field_message` translates it when it is sent."""
    return text


# What marshmallow (and our own fields) say about a field, by its English text: the template
# marshmallow formats (``{max}``) and the catalogue's msgid (``%(max)s``). The ``fields`` keys
# and the error ``code`` stay as they are; only the reasons follow Accept-Language.
_FIELD_MESSAGES: list[tuple[str, str]] = [
    ("Missing data for required field.", N_("Missing data for required field.")),
    ("Field may not be null.", N_("Field may not be null.")),
    ("Invalid value.", N_("Invalid value.")),
    ("Not a valid string.", N_("Not a valid string.")),
    ("Not a valid utf-8 string.", N_("Not a valid utf-8 string.")),
    ("Not a valid integer.", N_("Not a valid integer.")),
    ("Not a valid number.", N_("Not a valid number.")),
    ("Number too large.", N_("Number too large.")),
    ("Not a valid boolean.", N_("Not a valid boolean.")),
    ("Not a valid list.", N_("Not a valid list.")),
    ("Not a valid mapping type.", N_("Not a valid mapping type.")),
    ("Not a valid datetime.", N_("Not a valid datetime.")),
    ("Invalid type.", N_("Invalid type.")),
    ("Invalid input type.", N_("Invalid input type.")),
    ("Unknown field.", N_("Unknown field.")),
    ("Length must be between {min} and {max}.", N_("Length must be between %(min)s and %(max)s.")),
    ("Length must be {equal}.", N_("Length must be %(equal)s.")),
    ("Longer than maximum length {max}.", N_("Longer than maximum length %(max)s.")),
    ("Shorter than minimum length {min}.", N_("Shorter than minimum length %(min)s.")),
    (
        "Must be greater than or equal to {min} and less than or equal to {max}.",
        N_("Must be greater than or equal to %(min)s and less than or equal to %(max)s."),
    ),
    ("Must be greater than or equal to {min}.", N_("Must be greater than or equal to %(min)s.")),
    ("Must be less than or equal to {max}.", N_("Must be less than or equal to %(max)s.")),
    # notify_site.api.schemas' own fields and requests.
    ("give this field once", N_("give this field once")),
    (
        "a connection id (a positive integer) or label (a non-empty string)",
        N_("a connection id (a positive integer) or label (a non-empty string)"),
    ),
    ("a label has at most {max} characters", N_("a label has at most %(max)s characters")),
    (
        "must be a file part of a multipart/form-data body",
        N_("must be a file part of a multipart/form-data body"),
    ),
    (
        "an RFC 3339 date and time with its offset, e.g. 2031-05-06T07:30:00+09:00",
        N_("an RFC 3339 date and time with its offset, e.g. 2031-05-06T07:30:00+09:00"),
    ),
    (
        "give the time with its offset (Z or +09:00)",
        N_("give the time with its offset (Z or +09:00)"),
    ),
    (
        "a wall time without an offset, e.g. 2031-05-06T07:30",
        N_("a wall time without an offset, e.g. 2031-05-06T07:30"),
    ),
    ("a time of day, HH:MM", N_("a time of day, HH:MM")),
    ("give either rrule or recurrence", N_("give either rrule or recurrence")),
]


def _template_pattern(template: str) -> re.Pattern[str]:
    parts = re.split(r"\{(\w+)\}", template)
    pattern = "".join(
        re.escape(part) if index % 2 == 0 else rf"(?P<{part}>-?[\w.:+-]+)"
        for index, part in enumerate(parts)
    )
    return re.compile(pattern)


_FIELD_PATTERNS = [(_template_pattern(english), msgid) for english, msgid in _FIELD_MESSAGES]


def field_message(text: str) -> str:
    """One reason about a field in the request's language, when it is one the API knows."""
    for pattern, msgid in _FIELD_PATTERNS:
        match = pattern.fullmatch(text)
        if match:
            return gettext(msgid, **match.groupdict())
    return text


def flatten_messages(messages: Any, prefix: str = "") -> dict[str, str]:
    """marshmallow's nested error messages as ``{"sticker.package_id": "reason"}``, each
    reason in the request's language (see :func:`field_message`)."""
    if isinstance(messages, Mapping):
        flat: dict[str, str] = {}
        for name, value in messages.items():
            if name == "_schema":  # about the object itself, not one of its fields
                key = prefix or "body"
            else:
                key = f"{prefix}.{name}" if prefix else str(name)
            flat.update(flatten_messages(value, key))
        return flat
    if isinstance(messages, list | tuple):
        if all(isinstance(item, str) for item in messages):
            return {prefix or "body": " ".join(field_message(item) for item in messages)}
        flat = {}
        for item in messages:
            flat.update(flatten_messages(item, prefix))
        return flat
    return {prefix or "body": field_message(str(messages))}


def validation_error(field_errors: Mapping[str, str]) -> ApiError:
    names = ", ".join(sorted(field_errors))
    return ApiError(
        400,
        "validation_failed",
        gettext("The request is not valid (%(names)s); see fields.", names=names),
        fields=field_errors,
    )


def _http_code(error: HTTPException) -> str:
    # Same identifiers as the site-wide handler (notify_site.views.errors) gives these.
    return (error.name or "error").lower().replace(" ", "_")


def _rollback() -> None:
    # The database may be the thing that failed: a failing rollback must not hide the answer.
    with contextlib.suppress(SQLAlchemyError):
        db.session.rollback()


def register_error_handlers(bp: Blueprint) -> None:
    """Answer every error raised while the API blueprint handles a request with JSON."""

    @bp.errorhandler(ApiError)
    def api_error(error: ApiError):
        return error_response(
            error.status,
            error.code,
            error.message,
            field_errors=error.fields,
            headers=error.headers,
        )

    @bp.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        status = error.code or 500
        message = describe(error, json=True)
        if status == 413:
            limit = request.max_content_length  # MAX_CONTENT_LENGTH, or a route's own bound
            message = gettext(
                "The request body is larger than this API accepts (%(limit)s bytes).", limit=limit
            )
        return error_response(status, _http_code(error), message)

    @bp.errorhandler(OperationalError)
    @bp.errorhandler(PoolTimeoutError)
    def database_unavailable(error: SQLAlchemyError):
        _rollback()
        log.warning(
            "database unavailable on %s %s: %s",
            request.method,
            redact(request.path),
            type(error.orig if isinstance(error, OperationalError) else error).__name__,
        )
        return error_response(
            503,
            "service_unavailable",
            gettext("The database is unavailable. Nothing was done; retry after a few seconds."),
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )

    @bp.errorhandler(Exception)
    def unexpected_error(error: Exception):
        _rollback()
        log.exception("unhandled error on %s %s", request.method, redact(request.path))
        return error_response(
            500,
            "internal_error",
            gettext("Something went wrong on our side. Try again in a moment."),
        )
