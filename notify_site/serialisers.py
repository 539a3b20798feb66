"""How the site's things look in JSON: one serialiser per entity, one time format, one error
envelope. Every JSON answer of the site is written here: ``/api/v1``, ``/dashboard.json``,
``/admin/*.json`` and ``/send/status.json``.

- **One serialiser per entity** (marshmallow schemas). The API's schema of an entity
  (:class:`ConnectionSchema`, :class:`NotificationSchema`) is what ``/api/v1`` answers and
  what its OpenAPI document describes; the *detail* schema beside it
  (:class:`ConnectionDetailSchema`, :class:`NotificationDetailSchema`) adds what the site's
  own pages show (an owner, a stored text in the page's language...). Each page takes the
  fields it shows with ``only``/``exclude`` (the ready-made instances below): a field is
  named and formatted in one place. A schema reads an ORM row or a service's row of the same
  attribute names (the admin's lists read plain rows).
- **One time format**: RFC 3339 in UTC with a ``Z`` (:func:`rfc3339`,
  :class:`UTCTimestamp`); a reset time also as epoch seconds, as ``X-RateLimit-Reset``.
- **One error envelope**: ``{"error": {"code", "message", "fields"}}``, built by
  :func:`error_response` for every JSON error the site gives (the relay answers in LINE
  Notify's own ``{status, message}``).

Past 400 lines on purpose: one idea, the site's JSON shapes; keeping every shape in one
place is what keeps the time format and the error envelope the same everywhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from flask import Response, current_app, json
from marshmallow import Schema, fields

from notify_site import stored_text
from notify_site.models import ConnectionStatus, NotificationStatus, WebhookFormat
from notify_site.security import external_url
from notify_site.services import attempts
from notify_site.services.dashboard import excerpt
from notify_site.services.retry import OutcomeKind

# ---------------------------------------------------------------------------- times


def rfc3339(value: datetime | None) -> str | None:
    """A time as RFC 3339 in UTC with a ``Z``: ``2025-03-31T12:00:00.123456Z``."""
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


class UTCTimestamp(fields.DateTime):
    """A time as RFC 3339 in UTC with a ``Z`` (:func:`rfc3339`)."""

    def _serialize(self, value: datetime | None, attr, obj, **kwargs) -> str | None:
        return rfc3339(value)


class EpochSeconds(fields.Integer):
    """A time as whole seconds since the Unix epoch (what X-RateLimit-Reset carries)."""

    def _serialize(self, value: datetime | None, attr, obj, **kwargs) -> int | None:
        if value is None:
            return None
        return int(value.timestamp())


# ---------------------------------------------------------------------------- people


class OwnerSchema(Schema):
    """Whose a row is (the admin's lists)."""

    id = fields.Integer(required=True)
    username = fields.String(required=True)


# ---------------------------------------------------------------------------- connections


class ConnectionRefSchema(Schema):
    """A connection as a notification names it."""

    id = fields.Integer(required=True)
    label = fields.String(required=True)


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
    """A connection: its chat, status and last rate-limit snapshot (never its token)."""

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


class ConnectionDetailSchema(ConnectionSchema):
    """A connection as the site's pages show it: why it is in its state, and whose it is."""

    status_detail = fields.String(allow_none=True)
    # The stored English detail in the page's language: what the page shows.
    status_detail_text = fields.Function(lambda c: stored_text.shown_column(c, "status_detail"))
    owner = fields.Nested(OwnerSchema)


# ---------------------------------------------------------------------------- notifications


class ConnectionStateSchema(ConnectionRefSchema):
    """A notification's connection and whether it can still receive (the admin's lists)."""

    status = fields.String(allow_none=True)


class NotificationRefSchema(Schema):
    """A notification as a list of them names it: which one, to which chat, in what state."""

    id = fields.Integer(required=True)
    connection = fields.Nested(ConnectionRefSchema, required=True)
    status = fields.String(
        required=True,
        metadata={"enum": list(NotificationStatus.ALL)},
    )


class NotificationSchema(NotificationRefSchema):
    """A notification and where its delivery stands."""

    attempts = fields.Integer(required=True)
    last_error = fields.String(allow_none=True, required=True)
    last_status_code = fields.Integer(allow_none=True, required=True)
    message = fields.String(required=True)
    created_at = UTCTimestamp(required=True)
    updated_at = UTCTimestamp(required=True)
    next_attempt_at = UTCTimestamp(allow_none=True, required=True)
    finished_at = UTCTimestamp(allow_none=True, required=True)
    send_at = UTCTimestamp(
        allow_none=True,
        required=True,
        metadata={
            "description": "When it was asked to go: a send-later time (status `scheduled` "
            "until then), or the time of the schedule occurrence that queued it; null: now"
        },
    )


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


class NotificationHistorySchema(NotificationSchema):
    """One notification as ``GET /api/v1/notifications/<id>`` answers it: with every call made
    for it (one query more, so the lists leave it out)."""

    history = AttemptHistory(
        fields.Nested(AttemptSchema),
        required=True,
        metadata={
            "description": "Every call made to the Notify server for it, oldest first; a call "
            "its worker never finished (stopped during the call) is `interrupted`"
        },
    )


class NotificationDetailSchema(NotificationSchema):
    """A notification as the site's pages show it: the stored error in the page's language,
    an excerpt, and for the admin's lists whose it is and what is wrong with it."""

    connection = fields.Nested(ConnectionStateSchema, required=True)
    last_error_text = fields.Function(lambda n: stored_text.shown_column(n, "last_error"))
    excerpt = fields.Function(lambda n: excerpt(n.message))
    owner = fields.Nested(OwnerSchema)
    problem = fields.String()
    since = UTCTimestamp(allow_none=True)
    lease_expires_at = UTCTimestamp(allow_none=True)
    can_retry = fields.Boolean()
    can_cancel = fields.Boolean()


# ---------------------------------------------------------------------------- schedules


class StickerRefSchema(Schema):
    package_id = fields.Integer(attribute="sticker_package_id", required=True)
    sticker_id = fields.Integer(required=True)


class ImageRefSchema(Schema):
    thumbnail_url = fields.String(attribute="image_thumbnail_url", required=True)
    fullsize_url = fields.String(attribute="image_fullsize_url", required=True)


class WallTimeField(fields.DateTime):
    """A wall time in a schedule's zone, without an offset: ``2031-05-06T07:30:00``."""

    def _serialize(self, value: datetime | None, attr, obj, **kwargs) -> str | None:
        return None if value is None else value.isoformat()


class OccurrenceSchema(Schema):
    """What became of one occurrence of a schedule."""

    occurs_at = UTCTimestamp(required=True)
    status = fields.String(required=True, metadata={"enum": ["queued", "skipped", "not_sent"]})


class ScheduleSchema(Schema):
    """A recurring schedule: what it sends, where, and when (an RRULE in a time zone)."""

    id = fields.Integer(required=True)
    name = fields.String(required=True)
    status = fields.String(required=True, metadata={"enum": ["active", "paused", "finished"]})
    rrule = fields.String(required=True)
    timezone = fields.String(required=True)
    starts_at = WallTimeField(attribute="starts_local", required=True)
    ends_at = WallTimeField(attribute="ends_local", allow_none=True, required=True)
    connections = fields.List(fields.Nested(ConnectionRefSchema), required=True)
    message = fields.String(required=True)
    sticker = fields.Method("_sticker", allow_none=True, metadata={"type": "object"})
    image = fields.Method("_image", allow_none=True, metadata={"type": "object"})
    notification_disabled = fields.Boolean(required=True)
    next_run_at = UTCTimestamp(
        allow_none=True,
        required=True,
        metadata={"description": "The next occurrence not yet handled; null when finished"},
    )
    created_at = UTCTimestamp(required=True)

    def _sticker(self, schedule) -> dict | None:
        schedule = getattr(schedule, "schedule", schedule)  # a ScheduleDetail's row
        if schedule.sticker_package_id is None:
            return None
        return StickerRefSchema().dump(schedule)

    def _image(self, schedule) -> dict | None:
        schedule = getattr(schedule, "schedule", schedule)
        if schedule.image_thumbnail_url is None:
            return None
        return ImageRefSchema().dump(schedule)


class ScheduleDetailSchema(ScheduleSchema):
    """One schedule with its next occurrences and what became of its latest ones (a
    :class:`notify_site.services.schedules.manage.ScheduleDetail`)."""

    next_occurrences = fields.List(UTCTimestamp(), required=True)
    recent_occurrences = fields.List(fields.Nested(OccurrenceSchema), required=True)

    def get_attribute(self, obj, attr, default):
        if attr in ("next_occurrences", "recent_occurrences"):
            return getattr(obj, attr)
        return super().get_attribute(obj.schedule, attr, default)


# ---------------------------------------------------------------------------- API keys


class ApiKeySchema(Schema):
    """An API key (never its hash): whose, when used, and how many notifications it queued."""

    id = fields.Integer()
    name = fields.String()
    prefix = fields.String()
    owner = fields.Nested(OwnerSchema)
    created_at = UTCTimestamp()
    last_used_at = UTCTimestamp(allow_none=True)
    revoked_at = UTCTimestamp(allow_none=True)
    active = fields.Boolean(attribute="is_active")
    volume = fields.Integer()


# ---------------------------------------------------------------------------- webhooks


class WebhookSchema(Schema):
    """An incoming webhook (never its secret): where its posts go and how they read.

    ``url`` is its address without the secret, for tools that send the secret as
    ``Authorization: Bearer``.
    """

    id = fields.Integer(required=True)
    name = fields.String(required=True)
    format = fields.String(required=True, metadata={"enum": list(WebhookFormat.ALL)})
    connections = fields.List(fields.Nested(ConnectionRefSchema), required=True)
    status = fields.Function(
        lambda webhook: "paused" if webhook.is_paused else "active",
        required=True,
        metadata={"type": "string", "enum": ["active", "paused"]},
    )
    template = fields.String(
        allow_none=True,
        required=True,
        metadata={"description": "The webhook's own Jinja2 template; null: the built-in one"},
    )
    locale = fields.String(required=True, metadata={"description": "The messages' language"})
    dedupe_seconds = fields.Integer(
        required=True,
        metadata={
            "description": "Repeats of one alert group in one state within this "
            "many seconds queue once; 0: every post queues"
        },
    )
    url = fields.Function(
        lambda webhook: external_url("hooks.receive", webhook_id=webhook.id),
        required=True,
        metadata={"type": "string", "description": "Post here with Authorization: Bearer"},
    )
    created_at = UTCTimestamp(required=True)
    last_received_at = UTCTimestamp(allow_none=True, required=True)


# ---------------------------------------------------------------------------- pages and charts


class PaginationSchema(Schema):
    """Where a page is in its list (:class:`notify_site.services.paging.Page`)."""

    page = fields.Integer(required=True)
    per_page = fields.Integer(required=True)
    total = fields.Integer(required=True, metadata={"description": "Items on all pages"})
    total_pages = fields.Integer(attribute="pages", required=True)


class PageDetailSchema(PaginationSchema):
    """A page as the admin page's script reads it: ``pages`` (the same as ``total_pages``),
    whether counting stopped at the cap, and whether there is a next page."""

    pages = fields.Integer()
    total_capped = fields.Boolean()
    has_next = fields.Boolean()


class HourlyChartSchema(Schema):
    """Counts per hour, oldest hour first; ``pending`` only where the chart has it."""

    hours = fields.List(UTCTimestamp())
    delivered = fields.List(fields.Integer())
    failed = fields.List(fields.Integer())
    pending = fields.List(fields.Integer())


class CappedCountSchema(Schema):
    count = fields.Integer()
    capped = fields.Boolean()


class SummarySchema(Schema):
    """The admin page's figures (:class:`notify_site.services.admin.Summary`)."""

    generated_at = UTCTimestamp()
    window_hours = fields.Function(lambda s: len(s.chart.hours))
    chart = fields.Nested(HourlyChartSchema)
    delivered = fields.Integer(attribute="delivered_in_window")
    failed = fields.Integer(attribute="failed_in_window")
    notifications = fields.Method("_notifications")
    connections = fields.Method("_connections")
    count_cap = fields.Integer()

    def _notifications(self, summary) -> dict[str, Any]:
        counts = {
            "queued": summary.queued,
            "sending": summary.sending,
            "scheduled": summary.scheduled,
            "stuck": summary.stuck,
            "failed_24h": summary.failed_recently,
            "at_server": summary.at_server,
        }
        return {name: CAPPED_COUNT.dump(count) for name, count in counts.items()}

    def _connections(self, summary) -> dict[str, int]:
        return {
            "total": summary.connections_total,
            "active": summary.connections_active,
            "out_of_calls": summary.connections_out_of_calls,
            "unknown_quota": summary.connections_unknown_quota,
        }


# What the dashboard lists of each notification, and what /send/status.json follows.
DASHBOARD_NOTIFICATION_FIELDS = (
    "id",
    "connection.id",
    "connection.label",
    "excerpt",
    "status",
    "attempts",
    "last_error",
    "last_error_text",
    "created_at",
    "finished_at",
)
STATE_FIELDS = ("id", "status", "attempts", "last_error", "last_error_text", "finished_at")
ADMIN_NOTIFICATION_FIELDS = (
    "id",
    "owner",
    "connection",
    "status",
    "problem",
    "since",
    "attempts",
    "last_error",
    "last_error_text",
    "last_status_code",
    "message",  # the admin's rows hold its first characters only
    "created_at",
    "next_attempt_at",
    "lease_expires_at",
    "finished_at",
    "can_retry",
    "can_cancel",
)


class UpcomingSchema(Schema):
    """One send of the next 24 hours (:class:`notify_site.services.schedules.upcoming.Upcoming`)."""

    at = UTCTimestamp()
    excerpt = fields.Function(lambda u: excerpt(u.message))
    chats = fields.List(fields.String())
    notification_id = fields.Integer(allow_none=True)
    schedule_id = fields.Integer(allow_none=True)
    schedule_name = fields.String(allow_none=True)


class DashboardSchema(Schema):
    """A person's dashboard (:class:`notify_site.services.dashboard.Dashboard`)."""

    generated_at = UTCTimestamp(attribute="now")
    connections = fields.List(fields.Nested(ConnectionDetailSchema(exclude=("owner",))))
    notifications = fields.List(
        fields.Nested(NotificationDetailSchema(only=DASHBOARD_NOTIFICATION_FIELDS))
    )
    hourly = fields.Nested(HourlyChartSchema)
    upcoming = fields.List(fields.Nested(UpcomingSchema))


# Built once: a schema keeps no state between dumps, and building one (its fields, its
# nested schemas) costs more than a dump.
CAPPED_COUNT = CappedCountSchema()
DASHBOARD = DashboardSchema()
HOURLY_CHART = HourlyChartSchema()
NOTIFICATION_STATE = NotificationDetailSchema(only=STATE_FIELDS)
ADMIN_CONNECTION = ConnectionDetailSchema()
ADMIN_NOTIFICATION = NotificationDetailSchema(only=ADMIN_NOTIFICATION_FIELDS)
ADMIN_API_KEY = ApiKeySchema()
ADMIN_PAGE = PageDetailSchema(exclude=("total_pages",))
SUMMARY = SummarySchema()


# ---------------------------------------------------------------------------- errors


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
    """The body of every error answer: what :func:`error_response` writes."""

    error = fields.Nested(ErrorDetailSchema, required=True)


def error_body(code: str, message: str, field_errors: Mapping[str, str] | None = None) -> dict:
    """``{"error": {"code", "message", "fields"}}``: ``code`` a stable English identifier for
    programs, ``message`` for people, ``fields`` each offending request field and what is
    wrong with it."""
    return {"error": {"code": code, "message": message, "fields": dict(field_errors or {})}}


def error_response(
    status: int,
    code: str,
    message: str,
    *,
    field_errors: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """A JSON error answer in the site's one envelope (:func:`error_body`)."""
    response = current_app.response_class(
        json.dumps(error_body(code, message, field_errors)),
        status=status,
        mimetype="application/json",
    )
    response.headers.update(headers or {})
    return response
