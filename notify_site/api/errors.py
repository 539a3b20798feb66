"""Errors of the JSON API: always ``{"error": {"code", "message", "fields"}}``, never HTML.

``code`` is a stable English identifier for programs (``connection_not_found``), ``message``
is for people, and ``fields`` maps each offending request field to what is wrong with it.
The handlers are the API blueprint's own, so the site's HTML pages keep their HTML errors.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping
from typing import Any

from flask import Blueprint, Response, current_app, json, request
from flask_babel import gettext
from marshmallow import Schema, fields
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from werkzeug.exceptions import HTTPException

from notify_site.extensions import db

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


def error_response(
    status: int,
    code: str,
    message: str,
    *,
    fields: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    body = {"error": {"code": code, "message": message, "fields": dict(fields or {})}}
    response = current_app.response_class(
        json.dumps(body), status=status, mimetype="application/json"
    )
    response.headers.update(headers or {})
    return response


def flatten_messages(messages: Any, prefix: str = "") -> dict[str, str]:
    """marshmallow's nested error messages as ``{"sticker.package_id": "reason"}``."""
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
            return {prefix or "body": " ".join(messages)}
        flat = {}
        for item in messages:
            flat.update(flatten_messages(item, prefix))
        return flat
    return {prefix or "body": str(messages)}


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
            error.status, error.code, error.message, fields=error.fields, headers=error.headers
        )

    @bp.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        from notify_site.views.errors import describe

        status = error.code or 500
        message = describe(error)
        if status == 413:
            limit = current_app.config.get("MAX_CONTENT_LENGTH")
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
            request.path,
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
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(
            500,
            "internal_error",
            gettext("Something went wrong on our side. Try again in a moment."),
        )


class ErrorDetailSchema(Schema):
    code = fields.String(
        required=True,
        metadata={"description": "A stable identifier, e.g. connection_not_found"},
    )
    message = fields.String(required=True, metadata={"description": "What went wrong, for people"})
    field_errors = fields.Dict(
        keys=fields.String(),
        values=fields.String(),
        required=True,
        data_key="fields",
        metadata={"description": "Each offending request field and what is wrong with it"},
    )


class ErrorResponseSchema(Schema):
    """The body of every error answer."""

    error = fields.Nested(ErrorDetailSchema, required=True)
