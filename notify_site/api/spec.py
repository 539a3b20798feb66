"""flask-smorest, fitted to the site.

* :class:`SiteApi` builds the OpenAPI document but registers **no** error handler:
  ``flask_smorest.Api`` would install an app-wide ``HTTPException`` handler answering JSON,
  which would replace the site's HTML error pages. The API blueprint has its own handlers.
* :class:`ApiBlueprint` builds its app's :class:`SiteApi` when it is registered, so that
  ``create_app`` registers the API like any other blueprint.
* :class:`ApiParser` makes webargs' validation errors the API's 400 answer.
"""

from __future__ import annotations

from typing import Any

import flask_smorest
from flask import Flask
from marshmallow import ValidationError
from webargs.flaskparser import FlaskParser

from notify_site.api.errors import flatten_messages, validation_error
from notify_site.serialisers import ErrorResponseSchema

API_CONFIG = {
    "API_TITLE": "notify_site API",
    "API_VERSION": "v1",
    "OPENAPI_VERSION": "3.0.3",
    # No OPENAPI_URL_PREFIX: flask-smorest's own docs blueprint (and its Swagger UI from a
    # CDN) stays off. The API blueprint serves /api/v1/openapi.json itself.
}

SECURITY_SCHEME = {
    "type": "http",
    "scheme": "bearer",
    "description": "An API key from /api-keys: `Authorization: Bearer nsk_…`",
}


#: The rate-limit fields every answer of the API carries (notify_site/ratelimit.py).
RATE_LIMIT_HEADERS = {
    "RateLimit-Limit": ("integer", "Requests this key may make in the window (API_RATE_LIMIT)"),
    "RateLimit-Remaining": ("integer", "Requests left in the current window"),
    "RateLimit-Reset": ("integer", "Seconds until the window starts again"),
    "RateLimit-Policy": ("string", "The limit and its window in seconds, e.g. `600;w=60`"),
}
HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options"}


def document_rate_limits(spec) -> None:
    """Declare the rate limit in the document: the RateLimit-* headers on every success, and a
    429 answer (with Retry-After) on every operation — the API limits every request."""
    for name, (kind, description) in RATE_LIMIT_HEADERS.items():
        spec.components.header(name, {"description": description, "schema": {"type": kind}})
    headers = {name: {"$ref": f"#/components/headers/{name}"} for name in RATE_LIMIT_HEADERS}
    spec.components.response(
        "TOO_MANY_REQUESTS",
        {
            "description": "Too many requests for this key (`rate_limited`): wait Retry-After "
            "seconds",
            "headers": {
                "Retry-After": {
                    "description": "Seconds to wait before the next request",
                    "schema": {"type": "integer"},
                },
                **headers,
            },
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}
            },
        },
    )
    for operations in spec._paths.values():  # noqa: SLF001 - apispec keeps the paths here
        for method, operation in operations.items():
            if method not in HTTP_METHODS:
                continue
            responses = operation.setdefault("responses", {})
            responses.setdefault("429", {"$ref": "#/components/responses/TOO_MANY_REQUESTS"})
            for status, response in responses.items():
                if (
                    str(status).startswith("2")
                    and isinstance(response, dict)
                    and "$ref" not in response
                ):
                    response.setdefault("headers", {}).update(headers)


class SiteApi(flask_smorest.Api):
    """A flask-smorest ``Api`` that documents the API and leaves error handling to the site."""

    ERROR_SCHEMA = ErrorResponseSchema

    def _register_error_handlers(self) -> None:
        """Nothing: errors are handled by the API blueprint (see :mod:`.errors`)."""

    def document_blueprint(self, blp: flask_smorest.Blueprint, name: str) -> None:
        """Add an already registered blueprint's views to the document.

        What :meth:`flask_smorest.Api.register_blueprint` does after registering the blueprint
        with the app, which here has happened already.
        """
        self._app.extensions["flask-smorest"]["blp_name_to_api"][name] = self
        blp.register_views_in_doc(self, self._app, self.spec, name=name, parameters=None)


class ApiParser(FlaskParser):
    """webargs' parser, answering invalid arguments with the API's 400 error."""

    DEFAULT_VALIDATION_STATUS = 400

    def handle_error(
        self, error: ValidationError, req, schema, *, error_status_code, error_headers
    ):
        messages = error.messages
        # webargs files the messages under their location ("query", "json"…); the field names
        # are what a caller needs.
        if isinstance(messages, dict) and len(messages) == 1:
            (only,) = messages.values()
            if isinstance(only, dict):
                messages = only
        raise validation_error(flatten_messages(messages))


class ApiBlueprint(flask_smorest.Blueprint):
    """A flask-smorest blueprint that builds its app's OpenAPI document when registered."""

    ARGUMENTS_PARSER = ApiParser()

    def __init__(self, *args: Any, tags: list[dict[str, str]] | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.tags = tags or []

    def register(self, app: Flask, options: dict[str, Any]) -> None:
        super().register(app, options)
        for key, value in API_CONFIG.items():
            app.config.setdefault(key, value)
        api = SiteApi(
            app,
            spec_kwargs={
                "info": {"description": self.description},
                "security": [{"bearerAuth": []}],
            },
        )
        api.spec.components.security_scheme("bearerAuth", SECURITY_SCHEME)
        for tag in self.tags:
            api.spec.tag(tag)
        api.document_blueprint(self, options.get("name", self.name))
        document_rate_limits(api.spec)
        app.extensions["notify_site.api"] = api
