"""A person's recurring schedules: create, read, pause, resume, delete.

A schedule is checked whole when it is made — its name, its chats (the sender's own and
active, by :func:`notify_site.services.sending.find_targets`), its content (by
:mod:`notify_site.notify_content`, where the form or the API read it), its rule and zone —
and it must have an occurrence still to come. Its ``next_run_at`` is then the first
occurrence after now: a start in the past sends nothing for the times before the schedule
existed. Pausing keeps the schedule; resuming continues from the next occurrence after now,
so what fell inside the pause is not sent (it was not missed: it was paused).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from flask_babel import gettext
from sqlalchemy import delete, func, select, update

from notify_site.db_types import utcnow
from notify_site.extensions import db
from notify_site.i18n import is_valid_timezone
from notify_site.models import (
    Connection,
    Schedule,
    ScheduleOccurrence,
    ScheduleStatus,
    User,
)
from notify_site.notify_content import Content
from notify_site.services import ServiceError, plain_text_reason, sending
from notify_site.services.paging import Page, count_rows, page_offset
from notify_site.services.schedules.recurrence import (
    RecurrenceError,
    Rule,
    normalise_rule,
    to_local,
)

NAME_MAX_CHARS = 100
#: A schedule must have an occurrence within this long of now, and start and end no further
#: from now than this: a rule that fires once in decades is not what anyone meant.
HORIZON = timedelta(days=10 * 366)
EARLIEST_START = datetime(1900, 1, 1)


class ScheduleNotFoundError(ServiceError):
    """No schedule has that id, or none the caller may see."""


class ScheduleValidationError(ServiceError):
    """A schedule that cannot be made; ``fields`` maps each field to what is wrong with it."""

    def __init__(self, fields: dict[str, str]) -> None:
        super().__init__("; ".join(f"{name}: {reason}" for name, reason in fields.items()))
        self.fields = fields


class ScheduleStateError(ServiceError):
    """Pause or resume of a schedule that is not in a state for it."""


def recurrence_reason(error: RecurrenceError) -> str:
    """Why a rule cannot be used, for people."""
    reasons = {
        "no_weekdays": gettext("choose at least one day of the week"),
        "bad_month_day": gettext("choose a day that the month has"),
        "bad_month": gettext("choose a month"),
        "bad_kind": gettext("choose daily, weekly, monthly or yearly"),
        "length": gettext("give an RRULE of at most 500 characters"),
        "one_rule": gettext("give one RRULE, without DTSTART (the start is its own field)"),
        "frequency": gettext("must repeat at most once a minute"),
        "sub_daily_filters": gettext(
            "a rule repeating every minute or hour may name weekdays and times, not months "
            "or days of the month"
        ),
    }
    if error.code == "unreadable":
        return gettext("is not an RRULE this site can read: %(detail)s", detail=error.detail)
    return reasons.get(error.code, error.code)


@dataclass(frozen=True)
class ScheduleDraft:
    """A schedule as asked for: ``rule`` an RRULE value, ``starts_local`` and ``ends_local``
    naive wall times in ``timezone`` (no start: now, to the minute)."""

    name: str
    targets: list[int | str]
    content: Content
    rule: str
    timezone: str
    starts_local: datetime | None = None
    ends_local: datetime | None = None


def create_schedule(sender: sending.Sender, draft: ScheduleDraft) -> Schedule:
    """Check ``draft`` whole and store it (committed), ready for the scheduler; raises
    :class:`ScheduleValidationError` naming every field that is wrong, or the send use
    case's errors for a chat that cannot be reached."""
    problems: dict[str, str] = {}
    name = draft.name.strip()
    if not name:
        problems["name"] = gettext("is required")
    elif len(name) > NAME_MAX_CHARS:
        problems["name"] = gettext("at most %(max)s characters", max=NAME_MAX_CHARS)
    elif reason := plain_text_reason(name):
        problems["name"] = reason
    if draft.content.image_file is not None:
        problems["image_file"] = gettext("a schedule sends images by URL only")
    if not is_valid_timezone(draft.timezone):
        problems["timezone"] = gettext("is not a time zone this site knows")
    rule = None
    try:
        rule = normalise_rule(draft.rule)
    except RecurrenceError as error:
        problems["rrule"] = recurrence_reason(error)
    starts = draft.starts_local
    if starts is None and "timezone" not in problems:
        starts = to_local(utcnow(), ZoneInfo(draft.timezone)).replace(second=0, microsecond=0)
    latest = (utcnow() + HORIZON).replace(tzinfo=None)
    for field, value in (("starts_at", starts), ("ends_at", draft.ends_local)):
        if value is not None and not EARLIEST_START <= value <= latest:
            problems[field] = gettext("must be between 1900 and ten years from now")
    if draft.ends_local is not None and starts is not None and draft.ends_local <= starts:
        problems["ends_at"] = gettext("must be after the start")
    if not draft.targets:
        problems["connections"] = gettext("choose at least one connection")
    if problems or rule is None or starts is None:  # no problem: both were read
        raise ScheduleValidationError(problems)
    # A schedule sends as its owner, later, without the key it was made with: only the
    # owner's own chats (an admin's key reaches anyone's by id, but not for a schedule).
    found = sending.find_targets(sending.Sender(sender.id, sender.is_admin), draft.targets)
    recurrence = Rule(rule, draft.timezone, starts, draft.ends_local)
    try:
        upcoming = recurrence.comes_before(utcnow(), HORIZON) and recurrence.next(utcnow())
    except RecurrenceError as error:
        raise ScheduleValidationError({"rrule": recurrence_reason(error)}) from None
    if not upcoming:
        raise ScheduleValidationError(
            {
                "rrule": gettext(
                    "has no occurrence in the next ten years (look at its start and end)"
                )
            }
        )
    content = draft.content
    schedule = Schedule(
        owner_id=sender.id,
        name=name,
        rrule=rule,
        timezone=draft.timezone,
        starts_local=starts,
        ends_local=draft.ends_local,
        message=content.message,
        sticker_package_id=content.sticker_package_id,
        sticker_id=content.sticker_id,
        image_thumbnail_url=content.image_thumbnail_url,
        image_fullsize_url=content.image_fullsize_url,
        notification_disabled=content.notification_disabled,
        status=ScheduleStatus.ACTIVE,
        next_run_at=upcoming[0],
    )
    schedule.connections = list(
        db.session.scalars(select(Connection).where(Connection.id.in_([c.id for c in found])))
    )
    db.session.add(schedule)
    db.session.commit()
    return schedule


def rule_of(schedule: Schedule) -> Rule:
    return Rule(schedule.rrule, schedule.timezone, schedule.starts_local, schedule.ends_local)


def next_occurrences(schedule: Schedule, count: int = 5, now: datetime | None = None):
    """The next ``count`` occurrences after now (UTC instants; pages show them in the
    person's zone). Empty for a finished schedule."""
    if schedule.status == ScheduleStatus.FINISHED:
        return []
    return rule_of(schedule).next(now or utcnow(), count)


@dataclass(frozen=True)
class ScheduleDetail:
    """A schedule as its page and the API show it: the next occurrences (UTC instants) and
    what became of the latest ones."""

    schedule: Schedule
    next_occurrences: list[datetime]
    recent_occurrences: list[ScheduleOccurrence]


def schedule_detail(user: User, schedule_id: int, count: int = 5) -> ScheduleDetail:
    schedule = get_schedule(user, schedule_id)
    return ScheduleDetail(schedule, next_occurrences(schedule, count), recent_occurrences(schedule))


def get_schedule(user: User, schedule_id: int) -> Schedule:
    schedule = db.session.get(Schedule, schedule_id)
    if schedule is None or (schedule.owner_id != user.id and not user.is_admin):
        raise ScheduleNotFoundError(gettext("No schedule %(id)s.", id=schedule_id))
    return schedule


def list_schedules(user: User, *, page: int = 1, per_page: int = 50) -> Page[Schedule]:
    """The user's schedules, by name, a page at a time."""
    query = select(Schedule).where(Schedule.owner_id == user.id)
    items = list(
        db.session.scalars(
            query.order_by(Schedule.name, Schedule.id)
            .limit(per_page)
            .offset(page_offset(page, per_page))
        )
    )
    return Page(items, page, per_page, count_rows(query))


def recent_occurrences(schedule: Schedule, limit: int = 20) -> list[ScheduleOccurrence]:
    """What became of the schedule's latest occurrences, newest first."""
    return list(
        db.session.scalars(
            select(ScheduleOccurrence)
            .where(ScheduleOccurrence.schedule_id == schedule.id)
            .order_by(ScheduleOccurrence.occurs_at.desc())
            .limit(limit)
        )
    )


def occurrence_counts(schedule: Schedule) -> dict[str, int]:
    """How many of the schedule's occurrences were queued, skipped or not sent."""
    rows = db.session.execute(
        select(ScheduleOccurrence.status, func.count())
        .where(ScheduleOccurrence.schedule_id == schedule.id)
        .group_by(ScheduleOccurrence.status)
    ).all()
    return {status: count for status, count in rows}


def pause_schedule(user: User, schedule_id: int) -> Schedule:
    """Stop sending until resumed (a conditional UPDATE: only an active schedule pauses)."""
    schedule = get_schedule(user, schedule_id)
    changed = _set_status(schedule, ScheduleStatus.ACTIVE, status=ScheduleStatus.PAUSED)
    if not changed:
        raise ScheduleStateError(gettext("Only an active schedule can be paused."))
    return schedule


def resume_schedule(user: User, schedule_id: int, now: datetime | None = None) -> Schedule:
    """Send again from the next occurrence after now; what fell in the pause is not sent."""
    schedule = get_schedule(user, schedule_id)
    upcoming = rule_of(schedule).next(now or utcnow())
    values = (
        {"status": ScheduleStatus.ACTIVE, "next_run_at": upcoming[0]}
        if upcoming
        else {"status": ScheduleStatus.FINISHED, "next_run_at": None}
    )
    if not _set_status(schedule, ScheduleStatus.PAUSED, **values):
        raise ScheduleStateError(gettext("Only a paused schedule can be resumed."))
    return schedule


def _set_status(schedule: Schedule, current: str, **values) -> bool:
    changed = db.session.execute(
        update(Schedule)
        .where(Schedule.id == schedule.id, Schedule.status == current)
        .values(**values, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.commit()
    db.session.refresh(schedule)
    return changed == 1


def delete_schedule(user: User, schedule_id: int) -> None:
    """Delete the schedule and its record of occurrences; notifications it already queued
    stay (and are delivered)."""
    schedule = get_schedule(user, schedule_id)
    db.session.execute(delete(Schedule).where(Schedule.id == schedule.id))
    db.session.commit()
