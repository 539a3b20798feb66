"""marshmallow schemas of the API v1: they validate requests, shape answers, and are the
OpenAPI document's schemas.

Requests are checked here for shape and types, then once by :mod:`notify_site.notify_content`
(message length and characters, sticker and image pairs, https URLs, the image file's type,
size and dimensions): the rules the relay checks with, so what the API accepts the Notify
server accepts too. Unknown fields are refused, naming the field.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from flask import url_for
from flask_babel import gettext
from marshmallow import (
    RAISE,
    Schema,
    ValidationError,
    fields,
    post_load,
    validate,
    validates_schema,
)
from werkzeug.datastructures import FileStorage, MultiDict

from notify_site import notify_content
from notify_site.models import ConnectionStatus, NotificationStatus
from notify_site.notify_content import (
    IMAGE_MAX_BYTES,
    IMAGE_MAX_SIDE,
    MESSAGE_MAX_CHARS,
    URL_MAX_CHARS,
    Content,
    ContentError,
    check_content,
)
from notify_site.plain_text import text_problem
from notify_site.services import attempts
from notify_site.services.notifications import describe_problem
from notify_site.services.retry import OutcomeKind

CONNECTIONS_MAX = 100
LABEL_MAX_CHARS = 64
ID_MAX = 2**31 - 1
PER_PAGE_DEFAULT = 50
PER_PAGE_MAX = 100

# ---------------------------------------------------------------------------- fields


class ConnectionRef(fields.Field):
    """A connection, by id (an integer) or by label (a string)."""

    default_error_messages = {
        "invalid": "a connection id (a positive integer) or label (a non-empty string)",
        "too_long": f"a label has at most {LABEL_MAX_CHARS} characters",
    }

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault(
            "metadata",
            {
                "description": "A connection's id, or its label",
                "oneOf": [
                    {"type": "integer", "minimum": 1, "maximum": ID_MAX},
                    {"type": "string", "minLength": 1, "maxLength": LABEL_MAX_CHARS},
                ],
            },
        )
        super().__init__(**kwargs)

    def _deserialize(self, value: Any, attr, data, **kwargs) -> int | str:
        if isinstance(value, bool):
            raise self.make_error("invalid")
        if isinstance(value, int):
            if not 0 < value <= ID_MAX:
                raise self.make_error("invalid")
            return value
        if isinstance(value, str):
            value = value.strip()
            if not value or text_problem(value):
                raise self.make_error("invalid")
            if len(value) > LABEL_MAX_CHARS:
                raise self.make_error("too_long")
            return value
        raise self.make_error("invalid")


class StrictBoolean(fields.Boolean):
    """A JSON ``true`` or ``false``, not ``"yes"`` or ``1``."""

    def _deserialize(self, value: Any, attr, data, **kwargs) -> bool:
        if not isinstance(value, bool):
            raise self.make_error("invalid")
        return value


class ImageFile(fields.Field):
    """An uploaded file (multipart), read into memory; documented as binary."""

    default_error_messages = {"invalid": "must be a file part of a multipart/form-data body"}

    def __init__(self, **kwargs: Any) -> None:
        metadata = {"type": "string", "format": "binary", **kwargs.pop("metadata", {})}
        super().__init__(metadata=metadata, **kwargs)

    def _deserialize(self, value: Any, attr, data, **kwargs) -> notify_content.ImageFile:
        if not isinstance(value, FileStorage):
            raise self.make_error("invalid")
        # The name is only kept for the record: printable characters only.
        filename = "".join(char for char in value.filename or "" if char.isprintable())
        return notify_content.ImageFile(
            filename=filename[:200] or "image",
            data=value.read(),
            declared_type=value.mimetype or "",
        )


class UTCTimestamp(fields.DateTime):
    """An ISO 8601 time in UTC, with a ``Z``: ``2025-03-31T12:00:00.123456Z``."""

    def _serialize(self, value: datetime | None, attr, obj, **kwargs) -> str | None:
        if value is None:
            return None
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


class EpochSeconds(fields.Integer):
    """A time as whole seconds since the Unix epoch (what X-RateLimit-Reset carries)."""

    def _serialize(self, value: datetime | None, attr, obj, **kwargs) -> int | None:
        if value is None:
            return None
        return int(value.timestamp())


# ---------------------------------------------------------------------------- requests


@dataclass(frozen=True)
class NotificationRequest:
    """A validated POST /notifications: where to send (ids or labels) and what."""

    refs: list[int | str]
    refs_field: str  # "connection" or "connections": the field to blame for a bad target
    content: Content

    def canonical(self) -> dict[str, Any]:
        """The request in a canonical form, for the Idempotency-Key fingerprint.

        The same request sent as JSON or as multipart has the same form; an uploaded file
        counts by the SHA-256 of its bytes.
        """
        content = self.content
        upload = content.image_file
        return {
            "connections": list(self.refs),
            "message": content.message,
            "sticker_package_id": content.sticker_package_id,
            "sticker_id": content.sticker_id,
            "image_thumbnail_url": content.image_thumbnail_url,
            "image_fullsize_url": content.image_fullsize_url,
            "image_file": None
            if upload is None
            else {
                "filename": upload.filename,
                "content_type": upload.content_type,
                "sha256": hashlib.sha256(upload.data).hexdigest(),
            },
            "notification_disabled": content.notification_disabled,
        }


# notify_content's field names as each body names them (the multipart body uses them as they are).
JSON_FIELD_NAMES = {
    "sticker_package_id": "sticker.package_id",
    "sticker_id": "sticker.sticker_id",
    "image_thumbnail_url": "image.thumbnail_url",
    "image_fullsize_url": "image.fullsize_url",
}
FORM_FIELD_NAMES: dict[str, str] = {}


def checked_content(names: dict[str, str], **values: Any) -> Content:
    """The request's content, checked once by notify_content; its problems become marshmallow
    errors on the request's own field names, worded in the request's language."""
    try:
        return check_content(**values)
    except ContentError as error:
        raise ValidationError(
            {
                names.get(name, name): describe_problem(name, problem)
                for name, problem in error.problems.items()
            }
        ) from None


def _exactly_one_target(data: dict[str, Any]) -> None:
    if "connection" in data and "connections" in data:
        raise ValidationError(
            gettext("give either connection or connections, not both"), "connection"
        )
    if "connection" not in data and "connections" not in data:
        raise ValidationError(gettext("is required (or give connections)"), "connection")


class StickerSchema(Schema):
    package_id = fields.Integer(
        required=True, strict=True, metadata={"minimum": 1, "maximum": ID_MAX}
    )
    sticker_id = fields.Integer(
        required=True, strict=True, metadata={"minimum": 1, "maximum": ID_MAX}
    )


class ImageSchema(Schema):
    thumbnail_url = fields.String(
        required=True,
        metadata={"format": "uri", "maxLength": URL_MAX_CHARS, "description": "https:// only"},
    )
    fullsize_url = fields.String(
        required=True,
        metadata={"format": "uri", "maxLength": URL_MAX_CHARS, "description": "https:// only"},
    )


class NotificationRequestSchema(Schema):
    """The JSON body of POST /notifications. Give ``connection`` or ``connections``."""

    class Meta:
        unknown = RAISE

    connection = ConnectionRef()
    connections = fields.List(
        ConnectionRef(),
        validate=validate.Length(min=1, max=CONNECTIONS_MAX),
        metadata={"description": "Several connections, by id or label"},
    )
    message = fields.String(
        required=True,
        metadata={
            "minLength": 1,
            "maxLength": MESSAGE_MAX_CHARS,
            "description": f"1 to {MESSAGE_MAX_CHARS} characters (Unicode code points)",
        },
    )
    sticker = fields.Nested(StickerSchema, metadata={"description": "A LINE sticker"})
    image = fields.Nested(ImageSchema, metadata={"description": "An image by URL"})
    notification_disabled = StrictBoolean(
        load_default=False, metadata={"description": "Send silently (no push notification)"}
    )

    @validates_schema
    def _one_target(self, data: dict[str, Any], **kwargs) -> None:
        _exactly_one_target(data)

    @post_load
    def _to_request(self, data: dict[str, Any], **kwargs) -> NotificationRequest:
        sticker = data.get("sticker") or {}
        image = data.get("image") or {}
        refs_field = "connection" if "connection" in data else "connections"
        refs = [data["connection"]] if refs_field == "connection" else data["connections"]
        content = checked_content(
            JSON_FIELD_NAMES,
            message=data["message"],
            sticker_package_id=sticker.get("package_id"),
            sticker_id=sticker.get("sticker_id"),
            image_thumbnail_url=image.get("thumbnail_url"),
            image_fullsize_url=image.get("fullsize_url"),
            notification_disabled=data["notification_disabled"],
        )
        return NotificationRequest(refs=refs, refs_field=refs_field, content=content)


class NotificationFormSchema(Schema):
    """The multipart/form-data body of POST /notifications, used to attach an image file.

    ``connection`` (or ``connections``) may be repeated to send to several chats.
    """

    class Meta:
        unknown = RAISE

    connection = fields.List(
        ConnectionRef(),
        validate=validate.Length(min=1, max=CONNECTIONS_MAX),
        metadata={"description": "Repeat the field for several connections"},
    )
    connections = fields.List(
        ConnectionRef(),
        validate=validate.Length(min=1, max=CONNECTIONS_MAX),
        metadata={"description": "Same as connection"},
    )
    message = fields.String(
        required=True, metadata={"minLength": 1, "maxLength": MESSAGE_MAX_CHARS}
    )
    sticker_package_id = fields.Integer(metadata={"minimum": 1, "maximum": ID_MAX})
    sticker_id = fields.Integer(metadata={"minimum": 1, "maximum": ID_MAX})
    image_thumbnail_url = fields.String(metadata={"format": "uri", "maxLength": URL_MAX_CHARS})
    image_fullsize_url = fields.String(metadata={"format": "uri", "maxLength": URL_MAX_CHARS})
    image_file = ImageFile(
        metadata={
            "description": f"A PNG or JPEG image of at most {IMAGE_MAX_BYTES // 1024 // 1024} MiB "
            f"and {IMAGE_MAX_SIDE}x{IMAGE_MAX_SIDE} pixels; it takes the place of image URLs"
        }
    )
    notification_disabled = fields.Boolean(
        load_default=False, metadata={"description": "true or false"}
    )

    @validates_schema
    def _one_target(self, data: dict[str, Any], **kwargs) -> None:
        _exactly_one_target(data)

    @post_load
    def _to_request(self, data: dict[str, Any], **kwargs) -> NotificationRequest:
        refs_field = "connection" if "connection" in data else "connections"
        content = checked_content(
            FORM_FIELD_NAMES,
            message=data["message"],
            sticker_package_id=data.get("sticker_package_id"),
            sticker_id=data.get("sticker_id"),
            image_thumbnail_url=data.get("image_thumbnail_url"),
            image_fullsize_url=data.get("image_fullsize_url"),
            image_file=data.get("image_file"),
            notification_disabled=data["notification_disabled"],
        )
        return NotificationRequest(refs=data[refs_field], refs_field=refs_field, content=content)


REPEATABLE_FORM_FIELDS = {"connection", "connections"}


def form_payload(form: MultiDict, files: MultiDict) -> dict[str, Any]:
    """A multipart body as the mapping :class:`NotificationFormSchema` loads.

    Empty text fields and a file part with no file chosen count as absent, as browsers and
    ``curl -F name=`` send them. Other fields may appear once.
    """
    payload: dict[str, Any] = {}
    repeated: dict[str, list[str]] = {}
    for name in form:
        values = [value for value in form.getlist(name) if value != ""]
        if name in REPEATABLE_FORM_FIELDS:
            if values:
                payload[name] = values
        elif len(values) > 1:
            repeated[name] = ["give this field once"]
        elif values:
            payload[name] = values[0]
    for name in files:
        parts = [part for part in files.getlist(name) if part.filename or part.content_length]
        if len(parts) > 1:
            repeated[name] = ["give this field once"]
        elif parts:
            payload[name] = parts[0]
    if repeated:
        raise ValidationError(repeated)
    return payload


class PageArgsSchema(Schema):
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=ID_MAX))
    per_page = fields.Integer(
        load_default=PER_PAGE_DEFAULT, validate=validate.Range(min=1, max=PER_PAGE_MAX)
    )


# ---------------------------------------------------------------------------- answers


class ConnectionRefSchema(Schema):
    id = fields.Integer(required=True)
    label = fields.String(required=True)


class QueuedNotificationSchema(Schema):
    id = fields.Integer(required=True)
    connection = fields.Nested(ConnectionRefSchema, required=True)
    status = fields.String(required=True, metadata={"enum": [NotificationStatus.QUEUED]})
    url = fields.Method(
        "_url", required=True, metadata={"type": "string", "description": "Where to follow it"}
    )

    def _url(self, notification) -> str:
        return url_for("api.get_notification", notification_id=notification.id)


class QueuedResponseSchema(Schema):
    notifications = fields.List(fields.Nested(QueuedNotificationSchema), required=True)


class AttemptSchema(Schema):
    """One call to the Notify server for a notification."""

    started_at = UTCTimestamp(required=True)
    finished_at = UTCTimestamp(allow_none=True, required=True)
    outcome = fields.String(
        required=True,
        metadata={
            "enum": [
                OutcomeKind.DELIVERED,
                OutcomeKind.FAILED,
                OutcomeKind.RETRY,
                OutcomeKind.WAIT,
                OutcomeKind.REVOKED,
                OutcomeKind.UNREACHABLE,
                attempts.INTERRUPTED,
                attempts.IN_FLIGHT,
            ]
        },
    )
    status_code = fields.Integer(allow_none=True, required=True)
    error = fields.String(allow_none=True, required=True)


class AttemptHistory(fields.List):
    """A notification's calls, read from its attempt history (notify_site/services/attempts.py)."""

    def get_value(self, obj, attr, accessor=None, default=None):
        return attempts.history(obj)


class NotificationSchema(Schema):
    id = fields.Integer(required=True)
    connection = fields.Nested(ConnectionRefSchema, required=True)
    status = fields.String(
        required=True,
        metadata={"enum": [*NotificationStatus.PENDING, *NotificationStatus.TERMINAL]},
    )
    attempts = fields.Integer(required=True)
    last_error = fields.String(allow_none=True, required=True)
    last_status_code = fields.Integer(allow_none=True, required=True)
    message = fields.String(required=True)
    created_at = UTCTimestamp(required=True)
    updated_at = UTCTimestamp(required=True)
    next_attempt_at = UTCTimestamp(allow_none=True, required=True)
    finished_at = UTCTimestamp(allow_none=True, required=True)
    history = AttemptHistory(
        fields.Nested(AttemptSchema),
        required=True,
        metadata={
            "description": "Every call made to the Notify server for it, oldest first; a call "
            "its worker never finished (stopped during the call) is `interrupted`"
        },
    )


class RateLimitSchema(Schema):
    """The last X-RateLimit snapshot the Notify server sent for the connection's token."""

    limit = fields.Integer(attribute="rate_limit", allow_none=True, required=True)
    remaining = fields.Integer(attribute="rate_remaining", allow_none=True, required=True)
    image_limit = fields.Integer(attribute="rate_image_limit", allow_none=True, required=True)
    image_remaining = fields.Integer(
        attribute="rate_image_remaining", allow_none=True, required=True
    )
    reset_at = UTCTimestamp(attribute="rate_reset_at", allow_none=True, required=True)
    reset = EpochSeconds(
        allow_none=True,
        required=True,
        metadata={"description": "reset_at in seconds since the Unix epoch"},
    )
    checked_at = UTCTimestamp(attribute="rate_checked_at", allow_none=True, required=True)
    checked_by = fields.String(
        attribute="rate_checked_by",
        allow_none=True,
        required=True,
        metadata={"description": "The call that brought the snapshot: status, notify…"},
    )

    def get_attribute(self, obj, attr, default):
        # reset is reset_at again, as epoch seconds (marshmallow wants one field per attribute).
        if attr == "reset":
            return obj.rate_reset_at
        return super().get_attribute(obj, attr, default)


class ConnectionSchema(Schema):
    id = fields.Integer(required=True)
    label = fields.String(required=True)
    target = fields.String(attribute="target_name", allow_none=True, required=True)
    type = fields.String(
        attribute="target_type",
        allow_none=True,
        required=True,
        metadata={"enum": ["USER", "GROUP", None]},
    )
    status = fields.String(
        required=True,
        metadata={
            "enum": [
                ConnectionStatus.ACTIVE,
                ConnectionStatus.UNREACHABLE,
                ConnectionStatus.REVOKED,
                ConnectionStatus.ERROR,
            ],
            "description": "unreachable: the chat blocked the bot or removed it from the "
            "group; the connection is kept, and a status refresh once the chat is back makes "
            "it active again",
        },
    )
    rate_limit = fields.Nested(RateLimitSchema, required=True)

    def get_attribute(self, obj, attr, default):
        # The snapshot is a group of the connection's own columns, not a related object.
        if attr == "rate_limit":
            return obj
        return super().get_attribute(obj, attr, default)


class PaginationSchema(Schema):
    page = fields.Integer(required=True)
    per_page = fields.Integer(required=True)
    total = fields.Integer(required=True, metadata={"description": "Items on all pages"})
    total_pages = fields.Integer(attribute="pages", required=True)


class ConnectionListSchema(Schema):
    connections = fields.List(fields.Nested(ConnectionSchema), attribute="items", required=True)
    pagination = fields.Nested(PaginationSchema, required=True)

    def get_attribute(self, obj, attr, default):
        # The page object carries both the items and the counts.
        if attr == "pagination":
            return obj
        return super().get_attribute(obj, attr, default)
