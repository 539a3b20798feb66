"""Dated batches: many messages, each with its own date (the birthday batch), from a CSV file
or the same rows as JSON.

A CSV has a header row naming its columns — ``date,time,connection,message`` (``time`` may be
left out, or left empty on a row: the batch's default time is used) — and one row per
message: ``2027-04-01,07:30,Family,Happy birthday, Ken!``. Dates are ``YYYY-MM-DD`` and times
``HH:MM``, wall times in the batch's zone (the person's by default); ``connection`` is a
chat's label or id.

**All or nothing.** Every row is checked before anything is stored, and every bad row is
reported with its line number (the file's own line, header = line 1; for JSON, the row's
number counting from 1) and the reason. Only a batch without a single problem is stored, in
one transaction: each row becomes a send-later notification (``scheduled``), or, with
*repeat yearly*, a yearly schedule on that date and time (29 February: leap years only).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from flask_babel import gettext
from sqlalchemy import select

from notify_site.db_types import utcnow
from notify_site.extensions import db
from notify_site.models import Connection, Schedule, ScheduleStatus
from notify_site.notify_content import ContentError, check_content
from notify_site.services import ServiceError, notifications, sending
from notify_site.services.notifications import QueuedNotification, ResolvedConnection
from notify_site.services.schedules.recurrence import Recurrence, Rule, build_rule, to_utc

#: The most rows one batch may hold.
MAX_ROWS = 1000
COLUMNS = ("date", "time", "connection", "message")
REQUIRED_COLUMNS = ("date", "connection", "message")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_TIME = re.compile(r"(\d{1,2}):(\d{2})")


@dataclass(frozen=True)
class BatchRow:
    """One row as read: ``line`` is where it is (the file's line, or the JSON row's number)."""

    line: int
    date: str
    time: str
    connection: str
    message: str
    #: Why the row could not be read at all (a field short...), reported with the others.
    unreadable: str | None = None


@dataclass(frozen=True)
class BatchOptions:
    """The batch's own settings: its zone, the time for rows without one, and whether each
    row repeats every year."""

    timezone: str
    default_time: time | None = None
    yearly: bool = False


@dataclass(frozen=True)
class BatchProblem:
    line: int
    reason: str


class BatchError(ServiceError):
    """The batch was refused and nothing was stored; ``problems`` says what, by line."""

    def __init__(self, problems: list[BatchProblem]) -> None:
        super().__init__("; ".join(f"line {p.line}: {p.reason}" for p in problems[:5]))
        self.problems = problems


@dataclass(frozen=True)
class BatchResult:
    notifications: list[QueuedNotification]
    schedules: list[Schedule]


def read_csv(data: bytes) -> list[BatchRow]:
    """The rows of a CSV file, with their line numbers; :class:`BatchError` for a file that
    cannot be read as one (not UTF-8, no header, a missing column). A row that cannot be read
    is kept with its reason, reported with the other rows' problems."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise BatchError([BatchProblem(1, gettext("the file is not UTF-8 text"))]) from None
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [name.strip().lower() for name in next(reader)]
    except StopIteration:
        raise BatchError([BatchProblem(1, gettext("the file is empty"))]) from None
    except csv.Error as error:
        raise BatchError([BatchProblem(1, str(error))]) from None
    missing = [name for name in REQUIRED_COLUMNS if name not in header]
    unknown = [name for name in header if name not in COLUMNS]
    if missing or unknown:
        raise BatchError(
            [
                BatchProblem(
                    1,
                    gettext(
                        "the first line must name the columns: %(columns)s (time may be left out)",
                        columns=",".join(COLUMNS),
                    ),
                )
            ]
        )
    rows: list[BatchRow] = []
    line = reader.line_num
    try:
        for record in reader:
            start, line = line + 1, reader.line_num
            if not any(cell.strip() for cell in record):
                continue  # a blank line
            if len(record) != len(header):
                reason = gettext(
                    "has %(found)s fields, the header %(expected)s (put a message with "
                    "commas in double quotes)",
                    found=len(record),
                    expected=len(header),
                )
                rows.append(BatchRow(start, "", "", "", "", unreadable=reason))
                continue
            rows.append(_row(start, dict(zip(header, record, strict=True))))
    except csv.Error as error:
        rows.append(BatchRow(line + 1, "", "", "", "", unreadable=str(error)))
    return rows


def read_json(items: Iterable[Mapping[str, str]]) -> list[BatchRow]:
    """Rows posted as JSON objects (already shaped by the API's schema), numbered from 1."""
    return [_row(number, item) for number, item in enumerate(items, start=1)]


def _row(line: int, values: Mapping[str, str | None]) -> BatchRow:
    def text(name: str) -> str:
        return (values.get(name) or "").strip()

    # The message keeps its own spacing (only the line ends a spreadsheet adds are dropped).
    message = (values.get("message") or "").replace("\r\n", "\n")
    return BatchRow(line, text("date"), text("time"), text("connection"), message)


@dataclass(frozen=True)
class _Checked:
    row: BatchRow
    target: ResolvedConnection
    local: datetime
    content: object


def create_batch(
    sender: sending.Sender, rows: list[BatchRow], options: BatchOptions
) -> BatchResult:
    """Check every row, then store them all in one transaction (or nothing: :class:`BatchError`
    with every problem, by line)."""
    if not rows:
        raise BatchError([BatchProblem(1, gettext("there are no rows to send"))])
    if len(rows) > MAX_ROWS:
        raise BatchError(
            [BatchProblem(rows[MAX_ROWS].line, gettext("at most %(max)s rows", max=MAX_ROWS))]
        )
    zone = ZoneInfo(options.timezone)
    now = utcnow()
    # The owner's own chats only, as for a schedule (see manage.create_schedule).
    sender = sending.Sender(sender.id, sender.is_admin)
    targets: dict[str, ResolvedConnection | str] = {}
    checked: list[_Checked] = []
    problems: list[BatchProblem] = []
    for row in rows:
        if row.unreadable:
            problems.append(BatchProblem(row.line, row.unreadable))
            continue
        reasons: list[str] = []
        local = _when(row, options, reasons)
        target = _target(sender, row.connection, targets, reasons)
        try:
            content = check_content(row.message)
        except ContentError as error:
            content = None
            problem = error.problems.get("message")
            if problem is not None:
                reason = notifications.describe_problem("message", problem)
                reasons.append(gettext("message: %(reason)s", reason=reason))
        if local is not None:
            reason = _timing_problem(local, zone, options, now)
            if reason:
                reasons.append(reason)
        if reasons:
            problems.append(BatchProblem(row.line, "; ".join(reasons)))
        elif isinstance(target, ResolvedConnection) and local is not None:
            checked.append(_Checked(row, target, local, content))
    if problems:
        raise BatchError(problems)
    try:
        result = _store(sender, checked, options, zone)
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    return result


def _when(row: BatchRow, options: BatchOptions, reasons: list[str]) -> datetime | None:
    day: date | None = None
    if not _DATE.fullmatch(row.date):
        reasons.append(gettext("date: give it as YYYY-MM-DD"))
    else:
        try:
            day = date.fromisoformat(row.date)
        except ValueError:
            reasons.append(gettext("date: %(date)s is not a day of the calendar", date=row.date))
    at = options.default_time
    if row.time:
        match = _TIME.fullmatch(row.time)
        if match is None or int(match[1]) > 23 or int(match[2]) > 59:
            reasons.append(gettext("time: give it as HH:MM (24-hour)"))
            return None
        at = time(int(match[1]), int(match[2]))
    elif at is None:
        reasons.append(gettext("time: empty, and the batch has no default time"))
    if day is None or at is None:
        return None
    return datetime.combine(day, at)


def _target(
    sender: sending.Sender,
    ref: str,
    known: dict[str, ResolvedConnection | str],
    reasons: list[str],
) -> ResolvedConnection | None:
    if not ref:
        reasons.append(gettext("connection: is required"))
        return None
    if ref not in known:
        try:
            known[ref] = sending.find_targets(sender, [ref])[0]
        except (sending.UnknownConnectionError, sending.InactiveConnectionError) as error:
            known[ref] = str(error)
    found = known[ref]
    if isinstance(found, str):
        reasons.append(gettext("connection: %(reason)s", reason=found))
        return None
    return found


def _yearly(local: datetime, zone: ZoneInfo) -> Rule:
    rule = build_rule(Recurrence("yearly", local.time(), month=local.month, month_day=local.day))
    return Rule(rule, str(zone), local)


def _timing_problem(
    local: datetime, zone: ZoneInfo, options: BatchOptions, now: datetime
) -> str | None:
    if options.yearly:
        # Any date will do (a birthday in the past comes round again), if it comes at all.
        if not _yearly(local, zone).next(now):
            return gettext("date: never comes round again")
        return None
    try:
        sending.check_send_at(to_utc(local, zone), now)
    except sending.SendTimeError as error:
        return gettext("date and time: %(reason)s", reason=str(error))
    return None


def _store(
    sender: sending.Sender, rows: list[_Checked], options: BatchOptions, zone: ZoneInfo
) -> BatchResult:
    queued: list[QueuedNotification] = []
    schedules: list[Schedule] = []
    now = utcnow()
    connections = {
        connection.id: connection
        for connection in db.session.scalars(
            select(Connection).where(Connection.id.in_({item.target.id for item in rows}))
        )
    }
    for item in rows:
        if not options.yearly:
            queued += notifications.add_notifications(
                sender, [item.target], item.content, send_at=to_utc(item.local, zone)
            )
            continue
        rule = _yearly(item.local, zone)
        content = item.content
        schedule = Schedule(
            owner_id=sender.id,
            name=f"{item.row.message.strip()[:60] or '…'} ({item.row.date})",
            rrule=rule.rule,
            timezone=str(zone),
            starts_local=item.local,
            message=content.message,
            notification_disabled=False,
            status=ScheduleStatus.ACTIVE,
            next_run_at=rule.next(now)[0],
            connections=[connections[item.target.id]],
        )
        db.session.add(schedule)
        schedules.append(schedule)
    db.session.flush()
    return BatchResult(queued, schedules)
