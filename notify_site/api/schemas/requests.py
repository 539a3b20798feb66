"""The API's request schemas: the body of POST /notifications (JSON, or multipart to attach
a file), the body of POST /webhooks, and the paging arguments of the lists.

Requests are checked here for shape and types, then once by :mod:`notify_site.notify_content`
(message length and characters, sticker and image pairs, https URLs, the image file's type,
size and dimensions): the rules the relay checks with, so what the API accepts the Notify
server accepts too. That check is the only one: the send use case takes its
:class:`~notify_site.notify_content.Content` as it is. Unknown fields are refused, naming the
field.

Over 400 lines, and kept whole on purpose: it is the one place where what the API reads is
decided, so the rules its requests share (connection refs, the content check, text a database
can store, ids and cursors within a database integer) are written once, beside every request
that uses them (the schedules' own shapes live in schedules.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

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
from werkzeug.datastructures import MultiDict

from notify_site.api.schemas.fields import (
    ID_MAX,
    ConnectionRef,
    ImageFile,
    SendAt,
    StrictBoolean,
)
from notify_site.i18n import LANGUAGES
from notify_site.models import WebhookFormat
from notify_site.notify_content import (
    IMAGE_MAX_BYTES,
    IMAGE_MAX_SIDE,
    MESSAGE_MAX_CHARS,
    URL_MAX_CHARS,
    Content,
    ContentError,
    check_content,
)
from notify_site.plain_text import read_number, text_problem
from notify_site.services import history
from notify_site.services.notifications import describe_problem
from notify_site.services.webhooks import manage as webhooks
from notify_site.services.webhooks.manage import Settings
from notify_site.services.webhooks.templates import TEMPLATE_MAX_CHARS

CONNECTIONS_MAX = 100
PER_PAGE_DEFAULT = 50
PER_PAGE_MAX = 100


@dataclass(frozen=True)
class NotificationRequest:
    """A validated POST /notifications: where to send (ids or labels) and what."""

    refs: list[int | str]
    refs_field: str  # "connection" or "connections": the field to blame for a bad target
    content: Content
    send_at: datetime | None = None  # send later (checked by the send use case)


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


def exactly_one_target(data: dict[str, Any]) -> None:
    """Exactly one of ``connection`` and ``connections``."""
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
    send_at = SendAt()

    @validates_schema
    def _one_target(self, data: dict[str, Any], **kwargs) -> None:
        exactly_one_target(data)

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
        return NotificationRequest(
            refs=refs, refs_field=refs_field, content=content, send_at=data.get("send_at")
        )


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
    send_at = SendAt()

    @validates_schema
    def _one_target(self, data: dict[str, Any], **kwargs) -> None:
        exactly_one_target(data)

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
        return NotificationRequest(
            refs=data[refs_field],
            refs_field=refs_field,
            content=content,
            send_at=data.get("send_at"),
        )


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


@dataclass(frozen=True)
class WebhookRequest:
    """A validated POST /webhooks."""

    format: str
    settings: Settings


class WebhookRequestSchema(Schema):
    """The JSON body of POST /webhooks. Give ``connection`` or ``connections`` (ids or
    labels of your own chats)."""

    class Meta:
        unknown = RAISE

    name = fields.String(
        required=True, metadata={"minLength": 1, "maxLength": webhooks.NAME_MAX_CHARS}
    )
    format = fields.String(
        required=True,
        validate=validate.OneOf(WebhookFormat.ALL),
        metadata={"description": "What the tool posts: " + ", ".join(WebhookFormat.ALL)},
    )
    connection = ConnectionRef()
    connections = fields.List(
        ConnectionRef(),
        validate=validate.Length(min=1, max=webhooks.MAX_CONNECTIONS),
        metadata={"description": "Several connections, by id or label"},
    )
    template = fields.String(
        load_default=None,
        allow_none=True,
        metadata={
            "maxLength": TEMPLATE_MAX_CHARS,
            "description": "A Jinja2 template of your own (sandboxed); null or absent: the "
            "format's built-in message. It must render the format's sample, or it is refused.",
        },
    )
    locale = fields.String(
        load_default="en",
        validate=validate.OneOf(list(LANGUAGES)),
        metadata={"description": "The language of the built-in messages' words"},
    )
    dedupe_seconds = fields.Integer(
        load_default=None,
        strict=True,
        validate=validate.Range(min=0, max=webhooks.DEDUPE_MAX_SECONDS),
        metadata={
            "description": "Repeats of one group in one state within this many seconds "
            "queue once (default: the site's, 300); 0: every post queues"
        },
    )

    @validates_schema
    def _one_target(self, data: dict[str, Any], **kwargs) -> None:
        exactly_one_target(data)

    @post_load
    def _to_request(self, data: dict[str, Any], **kwargs) -> WebhookRequest:
        refs = [data["connection"]] if "connection" in data else data["connections"]
        return WebhookRequest(
            format=data["format"],
            settings=Settings(
                name=data["name"],
                connections=refs,
                template=data["template"],
                locale=data["locale"],
                dedupe_seconds=data["dedupe_seconds"],
            ),
        )


class HistoryTime(fields.AwareDateTime):
    """A history filter's time: RFC 3339 with its offset."""

    default_error_messages = {
        "invalid": "an RFC 3339 date and time with its offset, e.g. 2031-05-06T07:30:00+09:00",
        "invalid_awareness": "give the time with its offset (Z or +09:00)",
    }


def _searchable(text: str) -> None:
    """Search text that a stored message could hold (PostgreSQL cannot even compare NUL)."""
    problem = text_problem(text, multiline=True)
    if problem is not None:
        raise ValidationError(
            gettext(
                "must not contain control characters (found %(character)s)",
                character=problem.character,
            )
        )


def _a_cursor(cursor: str) -> None:
    """A ``next_cursor`` as this API gives them: a row id, so within a database integer."""
    if read_number(cursor) is None:
        raise ValidationError(gettext("is not a next_cursor this API gave"))


class HistoryArgsSchema(Schema):
    """The query of GET /notifications: filters, and the page (a cursor)."""

    connection = fields.Integer(
        validate=validate.Range(min=1, max=ID_MAX),
        metadata={"description": "Only this connection's notifications (its id)"},
    )
    status = fields.String(
        validate=validate.OneOf(history.STATUSES), metadata={"description": "Only this status"}
    )
    since = HistoryTime(metadata={"description": "Queued at or after this time (RFC 3339)"})
    until = HistoryTime(metadata={"description": "Queued before this time (RFC 3339)"})
    q = fields.String(
        validate=[validate.Length(min=1, max=200), _searchable],
        metadata={"description": "Text found in the message, whatever its case"},
    )
    cursor = fields.String(
        validate=_a_cursor,
        metadata={
            "description": "The `next_cursor` of the page before: the next, older page",
            "pattern": "^[0-9]{1,10}$",
        },
    )
    per_page = fields.Integer(
        load_default=history.PER_PAGE_DEFAULT,
        validate=validate.Range(min=1, max=history.PER_PAGE_MAX),
    )

    def to_filter(self, args: dict[str, Any]) -> history.HistoryFilter:
        return history.HistoryFilter(
            connection_id=args.get("connection"),
            status=args.get("status"),
            since=args.get("since"),
            until=args.get("until"),
            text=args.get("q"),
        )
