"""The API v1 endpoints. Thin, like every view: parse, call a service, map its errors.

Every endpoint but the OpenAPI document needs ``Authorization: Bearer <api key>``. A key acts
for its owner: it sees and sends to the owner's connections only (an admin's key: all).

Past 400 lines on purpose: one idea, the v1 endpoints, each a thin mapping; splitting
the blueprint would only move the shared error mapping apart from its users.
"""

from __future__ import annotations

import json
from http import HTTPStatus

from flask import current_app, g, request
from flask_babel import gettext
from flask_smorest import current_api
from marshmallow import ValidationError

from notify_site.api.errors import (
    ApiError,
    flatten_messages,
    register_error_handlers,
    unauthorized,
    validation_error,
)
from notify_site.api.schemas.fields import ID_MAX
from notify_site.api.schemas.requests import (
    HistoryArgsSchema,
    NotificationFormSchema,
    NotificationRequest,
    NotificationRequestSchema,
    PageArgsSchema,
    WebhookRequest,
    WebhookRequestSchema,
    form_payload,
)
from notify_site.api.schemas.responses import (
    ConnectionListSchema,
    CreatedWebhook,
    NotificationListSchema,
    QueuedResponseSchema,
    WebhookCreatedSchema,
    WebhookListSchema,
)
from notify_site.api.spec import ApiBlueprint
from notify_site.extensions import csrf
from notify_site.metrics import count_api_request
from notify_site.models import User
from notify_site.serialisers import ConnectionSchema, NotificationHistorySchema, WebhookSchema
from notify_site.services import api_keys, history, idempotency, notifications, sending
from notify_site.services import connections as connections_service
from notify_site.services.accounts import AccountDisabledError
from notify_site.services.webhooks import manage as webhooks

bp = ApiBlueprint(
    "api",
    __name__,
    url_prefix="/api/v1",
    description=(
        "Send LINE notifications from your own systems and follow their delivery. "
        "Authenticate with an API key from /api-keys. Errors are always "
        '`{"error": {"code", "message", "fields"}}`.'
    ),
    tags=[
        {"name": "notifications", "description": "Queue notifications and follow them"},
        {"name": "connections", "description": "The LINE chats a key can send to"},
        {
            "name": "webhooks",
            "description": "URLs that Grafana, Alertmanager, Uptime Kuma or any tool post "
            "alerts to, sent on as LINE messages",
        },
        {"name": "meta", "description": "This document"},
    ],
)
# The API authenticates with a key in a header, which a browser never adds on its own: a
# cross-site form cannot use it, so CSRF tokens have nothing to protect here (SPEC 4.7).
csrf.exempt(bp)
register_error_handlers(bp)
bp.after_request(count_api_request)  # JSON API requests by endpoint and status (/metrics)

PUBLIC_ENDPOINTS = {"api.openapi_json"}
IDEMPOTENCY_HEADER = "Idempotency-Key"

# Built once, used by every request: a schema keeps no state between loads or dumps, and
# building one (its fields, its nested schemas) cost more than the validation itself.
NOTIFICATION_REQUEST = NotificationRequestSchema()
NOTIFICATION_FORM = NotificationFormSchema()
QUEUED_RESPONSE = QueuedResponseSchema()
WEBHOOK_CREATED = WebhookCreatedSchema()


def errors_doc(*statuses: int):
    """Document the error answers an endpoint gives (all in the shape of ErrorResponseSchema)."""

    def decorator(func):
        for status in statuses:
            func = bp.alt_response(status, response=HTTPStatus(status).name)(func)
        return func

    return decorator


@bp.before_request
def authenticate_api_key() -> None:
    # The key is the whole authentication: nothing here reads the session cookie or asks
    # Flask-Login for a user. One query reads the key and its owner's role (see api_keys).
    if request.endpoint in PUBLIC_ENDPOINTS or request.method == "OPTIONS":
        return
    _authenticate()


def _authenticate() -> None:
    """Authenticate the request's key into ``g.api_key``, or raise the 401/403 answer."""
    header = request.headers.get("Authorization", "")
    if not header.strip():
        raise unauthorized(
            "missing_api_key",
            gettext("Send an API key: Authorization: Bearer nsk_… (create one at /api-keys)."),
            invalid=False,
        )
    scheme, _, credentials = header.strip().partition(" ")
    credentials = credentials.strip()
    try:
        api_key = (
            api_keys.authenticate(credentials, _presented_hash(credentials))
            if scheme.lower() == "bearer"
            else None
        )
    except AccountDisabledError as error:
        raise ApiError(403, "account_disabled", str(error)) from None
    if api_key is None:
        raise unauthorized(
            "invalid_api_key", gettext("The API key is wrong or was revoked."), invalid=True
        )
    api_keys.touch(api_key)
    g.api_key = api_key


def _presented_hash(credentials: str) -> str | None:
    """The key's hash if the per-key rate limit computed it already (notify_site/ratelimit.py)."""
    presented, digest = g.get("presented_key_hash") or (None, None)
    return digest if presented == credentials else None


def _caller() -> User:
    """The key's owner as a :class:`User`, for the services that take one (one more query)."""
    return api_keys.key_owner(g.api_key)


# ---------------------------------------------------------------------------- notifications

NOTIFICATION_REQUEST_DOC = {
    "required": True,
    "content": {
        "application/json": {"schema": NotificationRequestSchema},
        "multipart/form-data": {"schema": NotificationFormSchema},
    },
}
IDEMPOTENCY_PARAMETER = {
    "in": "header",
    "name": IDEMPOTENCY_HEADER,
    "required": False,
    "description": (
        "Makes the POST safe to retry: a repeat with the same key and the same request gets "
        "the first answer again and queues nothing; the same key with another request → 422."
    ),
    "schema": {"type": "string", "minLength": 1, "maxLength": idempotency.KEY_MAX_CHARS},
}


@bp.route("/notifications", methods=["POST"], tags=["notifications"])
@bp.doc(requestBody=NOTIFICATION_REQUEST_DOC, parameters=[IDEMPOTENCY_PARAMETER])
@bp.response(202, QueuedResponseSchema, description="Queued: the rows are on disk")
@errors_doc(400, 401, 403, 404, 409, 413, 415, 422, 503)
def post_notification():
    """Queue a notification to one or more connections

    Answers 202 once one notification per connection is durably queued. Send JSON, or
    multipart/form-data to attach an image file (`image_file`). With `send_at` it waits as
    `scheduled` until then, and may be cancelled until a worker takes it.
    """
    payload = _read_notification_request()
    key = _idempotency_key()
    try:
        result = sending.send(
            sending.Sender.by_key(g.api_key),
            payload.refs,
            payload.content,
            options=sending.SendOptions(source=sending.Source.API, send_at=payload.send_at),
            idempotency_key=None
            if key is None
            else sending.IdempotencyKey.for_request(
                key, payload.refs, payload.content, payload.send_at
            ),
        )
    except sending.UnknownConnectionError as error:
        raise ApiError(
            404, "connection_not_found", str(error), fields={payload.refs_field: str(error)}
        ) from None
    except sending.InactiveConnectionError as error:
        raise ApiError(
            409, "connection_inactive", str(error), fields={payload.refs_field: str(error)}
        ) from None
    except notifications.NotificationValidationError as error:
        raise validation_error(error.fields) from None
    except idempotency.IdempotencyKeyReusedError as error:
        raise ApiError(
            422, "idempotency_key_reused", str(error), fields={IDEMPOTENCY_HEADER: str(error)}
        ) from None
    except idempotency.IdempotencyConflictError as error:
        raise ApiError(409, "idempotency_conflict", str(error)) from None
    response = current_app.response_class(
        _queued_json(result.notifications), status=202, mimetype="application/json"
    )
    if result.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return response


def _read_notification_request() -> NotificationRequest:
    """The validated request, from a JSON or a multipart body (anything else: 415)."""
    try:
        if request.is_json:
            try:
                data = request.get_json(silent=True)
            except RecursionError:  # nested too deep for the parser: still just bad input
                data = None
            if data is None:
                raise ApiError(400, "invalid_json", gettext("The body is not valid JSON."))
            if not isinstance(data, dict):
                raise validation_error({"body": gettext("must be a JSON object")})
            return NOTIFICATION_REQUEST.load(data)
        if request.mimetype == "multipart/form-data":
            return NOTIFICATION_FORM.load(form_payload(request.form, request.files))
    except ValidationError as error:
        raise validation_error(flatten_messages(error.messages)) from None
    raise ApiError(
        415,
        "unsupported_media_type",
        gettext("Send application/json, or multipart/form-data to attach an image file."),
    )


def _idempotency_key() -> str | None:
    key = request.headers.get(IDEMPOTENCY_HEADER)
    if key is None:
        return None
    try:
        return idempotency.check_key(key)
    except idempotency.IdempotencyKeyError as error:
        raise validation_error({IDEMPOTENCY_HEADER: str(error)}) from None


def _queued_json(rows: list[notifications.QueuedNotification]) -> str:
    # Fixed formatting: a replay (built from the send's stored receipt) is byte for byte the
    # first answer.
    data = QUEUED_RESPONSE.dump({"notifications": rows})
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")) + "\n"


HISTORY_ARGS = HistoryArgsSchema()


@bp.route("/notifications", methods=["GET"], tags=["notifications"])
@bp.arguments(HistoryArgsSchema, location="query")
@bp.response(200, NotificationListSchema)
@errors_doc(400, 401, 403, 503)
def list_notifications(args: dict):
    """The notifications this key's owner sent, newest first, a page at a time

    Filter by `connection`, `status`, `since`/`until` (when queued) and `q` (text in the
    message). A page holds `per_page` rows; give its `next_cursor` as `cursor` for the next,
    older one (null on the last page). An admin's key sees every account's notifications.
    """
    return history.history(
        _caller(),
        HISTORY_ARGS.to_filter(args),
        cursor=args.get("cursor"),
        per_page=args["per_page"],
        everyone=True,
    )


@bp.route(f"/notifications/<int(max={ID_MAX}):notification_id>", tags=["notifications"])
@bp.response(200, NotificationHistorySchema)
@errors_doc(401, 403, 404, 503)
def get_notification(notification_id: int):
    """A notification's delivery status

    `status` is queued, sending, delivered or failed; times are RFC 3339 in UTC, with Z.
    """
    try:
        return notifications.get_notification(_caller(), notification_id)
    except notifications.NotificationNotFoundError:
        raise ApiError(
            404, "notification_not_found", gettext("No notification %(id)s.", id=notification_id)
        ) from None


@bp.route(
    f"/notifications/<int(max={ID_MAX}):notification_id>/cancel",
    methods=["POST"],
    tags=["notifications"],
)
@bp.response(200, NotificationHistorySchema)
@errors_doc(401, 403, 404, 409, 503)
def cancel_notification(notification_id: int):
    """Cancel a scheduled notification

    Only while it is `scheduled` and no worker has taken it: a notification already being
    delivered (or finished) is not cancelled, and the answer (409 `not_cancellable`) says so.
    """
    try:
        return notifications.cancel_scheduled(_caller(), notification_id)
    except notifications.NotificationNotFoundError:
        raise ApiError(
            404, "notification_not_found", gettext("No notification %(id)s.", id=notification_id)
        ) from None
    except notifications.NotCancellableError as error:
        raise ApiError(409, "not_cancellable", str(error)) from None


# ---------------------------------------------------------------------------- connections


@bp.route("/connections", tags=["connections"])
@bp.arguments(PageArgsSchema, location="query")
@bp.response(200, ConnectionListSchema)
@errors_doc(401, 403, 503)
def list_connections(args: dict[str, int]):
    """The connections this key can send to, a page at a time

    With their chat, status and last rate-limit snapshot. Ordered by id.
    """
    return api_keys.visible_connections(_caller(), page=args["page"], per_page=args["per_page"])


@bp.route(f"/connections/<int(max={ID_MAX}):connection_id>", tags=["connections"])
@bp.response(200, ConnectionSchema)
@errors_doc(401, 403, 404, 503)
def get_connection(connection_id: int):
    """One connection: chat, status and last rate-limit snapshot"""
    try:
        return connections_service.get_connection(_caller(), connection_id)
    except connections_service.ConnectionNotFoundError:
        raise ApiError(
            404, "connection_not_found", gettext("No connection %(id)s.", id=connection_id)
        ) from None


# ---------------------------------------------------------------------------- webhooks


def _webhook_not_found(webhook_id: int) -> ApiError:
    return ApiError(404, "webhook_not_found", gettext("No webhook %(id)s.", id=webhook_id))


@bp.route("/webhooks", methods=["GET"], tags=["webhooks"])
@bp.arguments(PageArgsSchema, location="query")
@bp.response(200, WebhookListSchema)
@errors_doc(401, 403, 503)
def list_webhooks(args: dict[str, int]):
    """This key's owner's incoming webhooks, a page at a time

    Never their secrets. Ordered by id.
    """
    return webhooks.page_webhooks(_caller(), page=args["page"], per_page=args["per_page"])


@bp.route("/webhooks", methods=["POST"], tags=["webhooks"])
@bp.arguments(WebhookRequestSchema)
@bp.response(201, WebhookCreatedSchema, description="Made: the only answer with its secret")
@errors_doc(400, 401, 403, 503)
def post_webhook(payload: WebhookRequest):
    """Make an incoming webhook for Grafana, Alertmanager, Uptime Kuma, any JSON or text

    Answers with its URL and secret, shown this once. Tools post to `url` with
    `Authorization: Bearer <secret>`, or to `url_with_secret` when they take only a URL.
    """
    try:
        webhook, secret = webhooks.create_webhook(_caller(), payload.format, payload.settings)
    except webhooks.WebhookError as error:
        raise validation_error(error.fields) from None
    data = WEBHOOK_CREATED.dump(CreatedWebhook(webhook, secret))
    return current_app.response_class(
        json.dumps(data, ensure_ascii=False) + "\n", status=201, mimetype="application/json"
    )


@bp.route(f"/webhooks/<int(max={ID_MAX}):webhook_id>", methods=["GET"], tags=["webhooks"])
@bp.response(200, WebhookSchema)
@errors_doc(401, 403, 404, 503)
def get_webhook(webhook_id: int):
    """One incoming webhook (never its secret)"""
    try:
        return webhooks.get_webhook(_caller(), webhook_id)
    except webhooks.WebhookNotFoundError:
        raise _webhook_not_found(webhook_id) from None


@bp.route(f"/webhooks/<int(max={ID_MAX}):webhook_id>", methods=["DELETE"], tags=["webhooks"])
@bp.response(204, description="Deleted: its URL answers 404 from now on")
@errors_doc(401, 403, 404, 503)
def delete_webhook(webhook_id: int):
    """Delete an incoming webhook and its history"""
    try:
        webhooks.delete_webhook(_caller(), webhook_id)
    except webhooks.WebhookNotFoundError:
        raise _webhook_not_found(webhook_id) from None
    return current_app.response_class(status=204)


# ---------------------------------------------------------------------------- the document


@bp.route("/openapi.json", tags=["meta"])
@bp.doc(security=[])
@bp.response(200, description="This OpenAPI 3 document")
def openapi_json():
    """The OpenAPI 3 document of this API, generated from the code that serves it"""
    return current_api.spec.to_dict()
