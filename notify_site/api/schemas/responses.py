"""The API's answers that are its own: what a POST queued, and a page of connections.

The entities in them (a connection, a notification) are the site's one serialiser of each
(:mod:`notify_site.serialisers`), as are the error answers.
"""

from __future__ import annotations

from flask import url_for
from marshmallow import Schema, fields

from notify_site.models import NotificationStatus
from notify_site.serialisers import ConnectionSchema, NotificationRefSchema, PaginationSchema


class QueuedNotificationSchema(NotificationRefSchema):
    """One notification a POST queued, and where to follow it."""

    status = fields.String(required=True, metadata={"enum": [NotificationStatus.QUEUED]})
    url = fields.Method(
        "_url", required=True, metadata={"type": "string", "description": "Where to follow it"}
    )

    def _url(self, notification) -> str:
        return url_for("api.get_notification", notification_id=notification.id)


class QueuedResponseSchema(Schema):
    notifications = fields.List(fields.Nested(QueuedNotificationSchema), required=True)


class ConnectionListSchema(Schema):
    connections = fields.List(fields.Nested(ConnectionSchema), attribute="items", required=True)
    pagination = fields.Nested(PaginationSchema, required=True)

    def get_attribute(self, obj, attr, default):
        # The page object carries both the items and the counts.
        if attr == "pagination":
            return obj
        return super().get_attribute(obj, attr, default)
