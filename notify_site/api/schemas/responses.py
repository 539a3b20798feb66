"""The API's answers that are its own: what a POST queued, and a page of connections.

The entities in them (a connection, a notification) are the site's one serialiser of each
(:mod:`notify_site.serialisers`), as are the error answers.
"""

from __future__ import annotations

from flask import url_for
from marshmallow import Schema, fields, post_dump

from notify_site.models import NotificationStatus, Webhook
from notify_site.security import external_url
from notify_site.serialisers import (
    ConnectionSchema,
    NotificationRefSchema,
    NotificationSchema,
    PaginationSchema,
    ScheduleSchema,
    UTCTimestamp,
    WebhookSchema,
)


class QueuedNotificationSchema(NotificationRefSchema):
    """One notification a POST queued, and where to follow it."""

    status = fields.String(
        required=True,
        metadata={"enum": [NotificationStatus.QUEUED, NotificationStatus.SCHEDULED]},
    )
    send_at = UTCTimestamp(
        metadata={"description": "Sent later: when (status scheduled); absent for now"}
    )
    url = fields.Method(
        "_url", required=True, metadata={"type": "string", "description": "Where to follow it"}
    )

    def _url(self, notification) -> str:
        return url_for("api.get_notification", notification_id=notification.id)

    @post_dump
    def _now_has_no_send_at(self, data: dict, **kwargs) -> dict:
        # A send for now answers as it always did.
        if data.get("send_at") is None:
            data.pop("send_at", None)
        return data


class NotificationListSchema(Schema):
    """A page of the history, newest first."""

    notifications = fields.List(fields.Nested(NotificationSchema), attribute="items", required=True)
    next_cursor = fields.String(
        allow_none=True,
        required=True,
        metadata={"description": "Give it as `cursor` for the next, older page; null: no more"},
    )


class QueuedResponseSchema(Schema):
    notifications = fields.List(fields.Nested(QueuedNotificationSchema), required=True)


class PagedSchema(Schema):
    """One page of a list: its items (a field of the subclass) and where it is."""

    pagination = fields.Nested(PaginationSchema, required=True)

    def get_attribute(self, obj, attr, default):
        # The page object carries both the items and the counts.
        if attr == "pagination":
            return obj
        return super().get_attribute(obj, attr, default)


class ConnectionListSchema(PagedSchema):
    connections = fields.List(fields.Nested(ConnectionSchema), attribute="items", required=True)


class ScheduleListSchema(PagedSchema):
    schedules = fields.List(fields.Nested(ScheduleSchema), attribute="items", required=True)


class BatchScheduleSchema(Schema):
    """A yearly schedule a batch row became."""

    id = fields.Integer(required=True)
    name = fields.String(required=True)
    next_run_at = UTCTimestamp(required=True)


class BatchResponseSchema(Schema):
    """What a dated batch stored: send-later notifications, or yearly schedules."""

    notifications = fields.List(fields.Nested(QueuedNotificationSchema), required=True)
    schedules = fields.List(fields.Nested(BatchScheduleSchema), required=True)


class WebhookNotificationSchema(QueuedNotificationSchema):
    """A notification a post queued, or for a repeat the one the first post queued, as it
    stands now."""

    status = fields.String(
        required=True,
        metadata={"enum": list(NotificationStatus.ALL)},
    )


class WebhookPostResponseSchema(Schema):
    """What a post to a webhook became (notify_site/api/hooks.py)."""

    status = fields.String(
        attribute="outcome",
        required=True,
        metadata={"enum": ["queued", "duplicate"], "description": "duplicate: nothing queued"},
    )
    delivery = fields.Integer(
        attribute="delivery_id", required=True, metadata={"description": "Its history entry"}
    )
    duplicate_of = fields.Integer(allow_none=True, required=True)
    message = fields.String(attribute="text", required=True)
    note = fields.String(allow_none=True, required=True)
    notifications = fields.List(fields.Nested(WebhookNotificationSchema), required=True)


class WebhookListSchema(PagedSchema):
    webhooks = fields.List(fields.Nested(WebhookSchema), attribute="items", required=True)


class CreatedWebhook:
    """A webhook just made and its secret, as :class:`WebhookCreatedSchema` writes them."""

    def __init__(self, webhook: Webhook, secret: str) -> None:
        self.webhook = webhook
        self.secret = secret

    def __getattr__(self, name: str):
        return getattr(self.webhook, name)

    @property
    def url_with_secret(self) -> str:
        return external_url(
            "hooks.receive_with_secret", webhook_id=self.webhook.id, secret=self.secret
        )


class WebhookCreatedSchema(WebhookSchema):
    """A webhook just made: the only answer that holds its secret."""

    secret = fields.String(required=True, metadata={"description": "Shown once: keep it now"})
    url_with_secret = fields.String(
        required=True, metadata={"description": "The URL for tools that take only a URL"}
    )
