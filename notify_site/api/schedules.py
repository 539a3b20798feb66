"""The API's scheduled sends: recurring schedules (``/api/v1/schedules``) and dated batches
(``/api/v1/batches``). Routes of the API blueprint (:mod:`notify_site.api.views`), thin like
every view: parse, call a service, map its errors. Send later itself is ``send_at`` on
``POST /api/v1/notifications``, and its cancel is beside it.
"""

from __future__ import annotations

from datetime import time

from flask import current_app, g
from flask_babel import gettext

from notify_site.api.errors import ApiError, validation_error
from notify_site.api.schemas.fields import ID_MAX
from notify_site.api.schemas.requests import PageArgsSchema
from notify_site.api.schemas.responses import BatchResponseSchema, ScheduleListSchema
from notify_site.api.schemas.schedules import (
    BatchRequestSchema,
    ScheduleRequest,
    ScheduleRequestSchema,
)
from notify_site.api.views import _caller, bp, errors_doc
from notify_site.i18n import is_valid_timezone
from notify_site.models import User
from notify_site.serialisers import ScheduleDetailSchema, ScheduleSchema
from notify_site.services import sending
from notify_site.services.schedules import batches, manage
from notify_site.services.schedules.recurrence import RecurrenceError, build_rule

SCHEDULE_PATH = f"/schedules/<int(max={ID_MAX}):schedule_id>"


def _zone(user: User, asked: str | None) -> str:
    """The zone asked for, else the owner's setting, else UTC."""
    if asked is not None:
        return asked
    return user.timezone if user.timezone and is_valid_timezone(user.timezone) else "UTC"


def _not_found(schedule_id: int) -> ApiError:
    return ApiError(404, "schedule_not_found", gettext("No schedule %(id)s.", id=schedule_id))


def _connection_error(error: Exception, field: str) -> ApiError:
    if isinstance(error, sending.UnknownConnectionError):
        return ApiError(404, "connection_not_found", str(error), fields={field: str(error)})
    return ApiError(409, "connection_inactive", str(error), fields={field: str(error)})


@bp.route("/schedules", tags=["schedules"])
@bp.arguments(PageArgsSchema, location="query")
@bp.response(200, ScheduleListSchema)
@errors_doc(401, 403, 503)
def list_schedules(args: dict[str, int]):
    """The key owner's recurring schedules, a page at a time, by name"""
    return manage.list_schedules(_caller(), page=args["page"], per_page=args["per_page"])


@bp.route("/schedules", methods=["POST"], tags=["schedules"])
@bp.arguments(ScheduleRequestSchema)
@bp.response(201, ScheduleDetailSchema)
@errors_doc(400, 401, 403, 404, 409, 415, 503)
def create_schedule(request: ScheduleRequest):
    """Create a recurring schedule

    When: a raw RFC 5545 `rrule` (without DTSTART), or a `recurrence` (daily, weekly on
    chosen days, monthly on a day, yearly on a date, at a time of day), expanded in
    `timezone`'s wall time from `starts_at`: a daily 09:00 stays 09:00 local across daylight
    saving. Each occurrence is queued once, as ordinary notifications.
    """
    user = _caller()
    zone = _zone(user, request.timezone)
    rule = request.rule
    if request.recurrence is not None:
        try:
            rule = build_rule(request.recurrence)
        except RecurrenceError as error:
            raise validation_error({"recurrence": manage.recurrence_reason(error)}) from None
    draft = manage.ScheduleDraft(
        name=request.name,
        targets=request.refs,
        content=request.content,
        rule=rule or "",
        timezone=zone,
        starts_local=request.starts_local,
        ends_local=request.ends_local,
    )
    try:
        schedule = manage.create_schedule(sending.Sender.by_key(g.api_key), draft)
    except manage.ScheduleValidationError as error:
        raise validation_error(error.fields) from None
    except (sending.UnknownConnectionError, sending.InactiveConnectionError) as error:
        raise _connection_error(error, request.refs_field) from None
    return manage.schedule_detail(user, schedule.id)


@bp.route(SCHEDULE_PATH, tags=["schedules"])
@bp.response(200, ScheduleDetailSchema)
@errors_doc(401, 403, 404, 503)
def get_schedule(schedule_id: int):
    """A schedule, its next five occurrences, and what became of its latest ones"""
    try:
        return manage.schedule_detail(_caller(), schedule_id)
    except manage.ScheduleNotFoundError:
        raise _not_found(schedule_id) from None


@bp.route(SCHEDULE_PATH, methods=["DELETE"], tags=["schedules"])
@bp.response(204)
@errors_doc(401, 403, 404, 503)
def delete_schedule(schedule_id: int):
    """Delete a schedule (notifications it already queued are still delivered)"""
    try:
        manage.delete_schedule(_caller(), schedule_id)
    except manage.ScheduleNotFoundError:
        raise _not_found(schedule_id) from None
    return current_app.response_class(status=204)


@bp.route(f"{SCHEDULE_PATH}/pause", methods=["POST"], tags=["schedules"])
@bp.response(200, ScheduleSchema)
@errors_doc(401, 403, 404, 409, 503)
def pause_schedule(schedule_id: int):
    """Pause an active schedule: nothing is sent until it is resumed"""
    return _change(manage.pause_schedule, schedule_id)


@bp.route(f"{SCHEDULE_PATH}/resume", methods=["POST"], tags=["schedules"])
@bp.response(200, ScheduleSchema)
@errors_doc(401, 403, 404, 409, 503)
def resume_schedule(schedule_id: int):
    """Resume a paused schedule from its next occurrence (what fell in the pause is not sent)"""
    return _change(manage.resume_schedule, schedule_id)


def _change(action, schedule_id: int):
    try:
        return action(_caller(), schedule_id)
    except manage.ScheduleNotFoundError:
        raise _not_found(schedule_id) from None
    except manage.ScheduleStateError as error:
        raise ApiError(409, "schedule_state", str(error)) from None


@bp.route("/batches", methods=["POST"], tags=["schedules"])
@bp.arguments(BatchRequestSchema)
@bp.response(201, BatchResponseSchema)
@errors_doc(400, 401, 403, 415, 503)
def create_batch(request: dict):
    """Schedule a dated batch (the rows of a CSV, as JSON)

    Every row is checked before anything is stored: one bad row and nothing is, and every bad
    row is reported in `fields` as `rows.N` (N counting from 0) with its reason. Each row
    becomes a send-later notification, or with `yearly` a yearly schedule.
    """
    user = _caller()
    zone = _zone(user, request.get("timezone"))
    if not is_valid_timezone(zone):
        raise validation_error({"timezone": gettext("is not a time zone this site knows")})
    default_time: time | None = request.get("default_time")
    rows = batches.read_json(
        {**row, "connection": str(row["connection"])} for row in request["rows"]
    )
    options = batches.BatchOptions(zone, default_time, request["yearly"])
    try:
        result = batches.create_batch(sending.Sender.by_key(g.api_key), rows, options)
    except batches.BatchError as error:
        raise validation_error(
            {f"rows.{problem.line - 1}": problem.reason for problem in error.problems}
        ) from None
    return result
