"""The API's request schemas for scheduled sends: a recurring schedule (a raw RRULE, or one of
the pages' recurrences) and a dated batch's rows as JSON.

Content is checked as a notification's is (:func:`.requests.checked_content`, the rules of
:mod:`notify_site.notify_content`); the rule, the zone and the chats by the schedules
service. Unknown fields are refused, naming the field.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time
from typing import Any

from marshmallow import (
    RAISE,
    Schema,
    ValidationError,
    fields,
    post_load,
    validate,
    validates_schema,
)

from notify_site.api.schemas.fields import ConnectionRef, StrictBoolean
from notify_site.api.schemas.requests import (
    CONNECTIONS_MAX,
    JSON_FIELD_NAMES,
    ImageSchema,
    StickerSchema,
    checked_content,
    exactly_one_target,
)
from notify_site.notify_content import MESSAGE_MAX_CHARS, Content
from notify_site.services.schedules.batches import MAX_ROWS
from notify_site.services.schedules.recurrence import KINDS, RULE_MAX_CHARS, WEEKDAYS, Recurrence

_CLOCK = re.compile(r"(\d{1,2}):(\d{2})")


class TimeOfDay(fields.Field):
    """A wall-clock time, ``HH:MM`` (24-hour)."""

    default_error_messages = {"invalid": "a time of day, HH:MM"}

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("metadata", {"type": "string", "pattern": r"^\d{1,2}:\d{2}$"})
        super().__init__(**kwargs)

    def _deserialize(self, value: Any, attr, data, **kwargs) -> time:
        match = _CLOCK.fullmatch(value) if isinstance(value, str) else None
        if match is None or int(match[1]) > 23 or int(match[2]) > 59:
            raise self.make_error("invalid")
        return time(int(match[1]), int(match[2]))


class WallTime(fields.NaiveDateTime):
    """A date and time in the schedule's zone, without an offset: ``2031-05-06T07:30``."""

    default_error_messages = {
        "invalid": "a wall time without an offset, e.g. 2031-05-06T07:30",
        "invalid_awareness": "a wall time without an offset, e.g. 2031-05-06T07:30",
    }

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(format="iso", **kwargs)


class RecurrenceSchema(Schema):
    """One of the pages' recurrences; the API builds its RRULE."""

    class Meta:
        unknown = RAISE

    kind = fields.String(required=True, validate=validate.OneOf(KINDS))
    time = TimeOfDay(required=True)
    weekdays = fields.List(
        fields.String(validate=validate.OneOf(WEEKDAYS)),
        metadata={"description": "weekly: MO, TU, WE, TH, FR, SA, SU"},
    )
    month_day = fields.Integer(
        strict=True, validate=validate.Range(1, 31), metadata={"description": "monthly, yearly"}
    )
    month = fields.Integer(
        strict=True, validate=validate.Range(1, 12), metadata={"description": "yearly"}
    )

    @post_load
    def _to_recurrence(self, data: dict[str, Any], **kwargs) -> Recurrence:
        return Recurrence(
            kind=data["kind"],
            at=data["time"],
            weekdays=tuple(WEEKDAYS.index(day) for day in data.get("weekdays", [])),
            month_day=data.get("month_day"),
            month=data.get("month"),
        )


@dataclass(frozen=True)
class ScheduleRequest:
    """A validated POST /schedules. ``rule`` (a raw RRULE) or ``recurrence``; ``timezone``,
    ``starts_local`` None for the owner's zone and now."""

    name: str
    refs: list[int | str]
    refs_field: str
    content: Content
    rule: str | None
    recurrence: Recurrence | None
    timezone: str | None
    starts_local: datetime | None
    ends_local: datetime | None


class ScheduleRequestSchema(Schema):
    """The JSON body of POST /schedules: what, where, and when (an RRULE or a recurrence)."""

    class Meta:
        unknown = RAISE

    name = fields.String(required=True, metadata={"minLength": 1, "maxLength": 100})
    connection = ConnectionRef()
    connections = fields.List(ConnectionRef(), validate=validate.Length(min=1, max=CONNECTIONS_MAX))
    message = fields.String(
        required=True, metadata={"minLength": 1, "maxLength": MESSAGE_MAX_CHARS}
    )
    sticker = fields.Nested(StickerSchema)
    image = fields.Nested(ImageSchema)
    notification_disabled = StrictBoolean(load_default=False)
    rrule = fields.String(
        metadata={
            "maxLength": RULE_MAX_CHARS,
            "description": "An RFC 5545 RRULE value without DTSTART, e.g. "
            "FREQ=WEEKLY;BYDAY=MO,FR;BYHOUR=9;BYMINUTE=0 (or give recurrence)",
        }
    )
    recurrence = fields.Nested(RecurrenceSchema)
    timezone = fields.String(
        metadata={"description": "An IANA zone; the key owner's zone setting when left out"}
    )
    starts_at = WallTime(metadata={"description": "A wall time in the zone; now when left out"})
    ends_at = WallTime(metadata={"description": "A wall time in the zone; no end if left out"})

    @validates_schema
    def _one_of_each(self, data: dict[str, Any], **kwargs) -> None:
        exactly_one_target(data)
        if ("rrule" in data) == ("recurrence" in data):
            raise ValidationError("give either rrule or recurrence", "rrule")

    @post_load
    def _to_request(self, data: dict[str, Any], **kwargs) -> ScheduleRequest:
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
        return ScheduleRequest(
            name=data["name"],
            refs=refs,
            refs_field=refs_field,
            content=content,
            rule=data.get("rrule"),
            recurrence=data.get("recurrence"),
            timezone=data.get("timezone"),
            starts_local=data.get("starts_at"),
            ends_local=data.get("ends_at"),
        )


class BatchRowSchema(Schema):
    class Meta:
        unknown = RAISE

    date = fields.String(required=True, metadata={"description": "YYYY-MM-DD"})
    time = fields.String(metadata={"description": "HH:MM; the batch's default_time if absent"})
    connection = ConnectionRef(required=True)
    message = fields.String(required=True, metadata={"maxLength": MESSAGE_MAX_CHARS})


class BatchRequestSchema(Schema):
    """The JSON body of POST /batches: the rows of a dated batch (a CSV's, as objects)."""

    class Meta:
        unknown = RAISE

    rows = fields.List(
        fields.Nested(BatchRowSchema),
        required=True,
        validate=validate.Length(min=1, max=MAX_ROWS),
    )
    timezone = fields.String(
        metadata={"description": "An IANA zone; the key owner's zone setting when left out"}
    )
    default_time = TimeOfDay(metadata={"description": "For rows without a time"})
    yearly = StrictBoolean(
        load_default=False, metadata={"description": "Each row repeats every year"}
    )
