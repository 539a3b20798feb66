"""Recurrence: RFC 5545 RRULEs expanded in a time zone's wall time. Pure: no database.

A schedule keeps its rule (the RRULE value, without DTSTART), its IANA zone and its start as
a *wall time* in that zone ("07:30 in Tokyo", not an instant). The rule is expanded by
python-dateutil's ``rrule`` over naive wall times from that start, and each wall time is then
placed in the zone with :mod:`zoneinfo`. So a daily 09:00 in ``America/New_York`` is 09:00
local on both sides of each daylight-saving change: 14:00 UTC in winter, 13:00 UTC in summer.

Two wall times need a rule, and we take RFC 5545's own (section 3.3.5), which is also what
``zoneinfo`` does with ``fold=0``:

* **a time that does not exist** (spring forward: 02:30 on the Sunday New York skips from
  02:00 to 03:00) is read with the offset *before* the gap, so it moves forward by the gap's
  length: a daily 02:30 goes out at 03:30 local that one day, and at 02:30 again the next;
* **a time that exists twice** (fall back: 01:30 comes once in daylight time, once in standard
  time) means the *first* of the two, and is sent once.

An occurrence moved by a gap onto the instant of another occurrence (only rules with several
times a day can do that) is one occurrence: times are unique per schedule.

The recurrences the pages build (:func:`build_rule`) always name the time of day
(``BYHOUR``/``BYMINUTE``/``BYSECOND``); a raw RRULE from the API that does not takes it from
the start. A monthly rule on the 31st skips months without one, and a yearly rule on 29
February only fires in leap years, as RFC 5545 says.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from dateutil.rrule import DAILY, HOURLY, MINUTELY, MONTHLY, WEEKLY, YEARLY, rrule, rrulestr

#: The kinds of recurrence the pages offer, each one RRULE shape.
KINDS = ("daily", "weekly", "monthly", "yearly")
#: RFC 5545's weekday codes, Monday first (Python's weekday() order).
WEEKDAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
#: The frequencies a raw RRULE may have. SECONDLY is refused: nothing should be sent that often.
FREQUENCIES = {MINUTELY, HOURLY, DAILY, WEEKLY, MONTHLY, YEARLY}
RULE_MAX_CHARS = 500
#: What a rule repeating every minute or hour may not name (weekdays and times it may).
_DAY_FILTERS = {"BYMONTH", "BYMONTHDAY", "BYYEARDAY", "BYWEEKNO", "BYSETPOS", "BYEASTER"}
# More than any change of a zone's offset: a wall time this far on cannot land before.
_SETTLE = timedelta(days=1)


class RecurrenceError(ValueError):
    """A rule that cannot be used; ``code`` says why (the service words it for people)."""

    def __init__(self, code: str, detail: str = "") -> None:
        super().__init__(f"{code}: {detail}" if detail else code)
        self.code = code
        self.detail = detail


@dataclass(frozen=True)
class Recurrence:
    """One of the pages' recurrences: ``kind`` and the time of day, plus the days it needs
    (weekly: ``weekdays`` as 0 = Monday…; monthly: ``month_day``; yearly: ``month`` and
    ``month_day``)."""

    kind: str
    at: time
    weekdays: tuple[int, ...] = ()
    month_day: int | None = None
    month: int | None = None


def build_rule(recurrence: Recurrence) -> str:
    """The RRULE value for one of the pages' recurrences."""
    at = recurrence.at
    clock = f"BYHOUR={at.hour};BYMINUTE={at.minute};BYSECOND=0"
    if recurrence.kind == "daily":
        return f"FREQ=DAILY;{clock}"
    if recurrence.kind == "weekly":
        if not recurrence.weekdays:
            raise RecurrenceError("no_weekdays")
        days = ",".join(WEEKDAYS[day] for day in sorted(set(recurrence.weekdays)))
        return f"FREQ=WEEKLY;BYDAY={days};{clock}"
    if recurrence.kind == "monthly":
        if not recurrence.month_day or not 1 <= recurrence.month_day <= 31:
            raise RecurrenceError("bad_month_day")
        return f"FREQ=MONTHLY;BYMONTHDAY={recurrence.month_day};{clock}"
    if recurrence.kind == "yearly":
        if not recurrence.month or not 1 <= recurrence.month <= 12:
            raise RecurrenceError("bad_month")
        if not recurrence.month_day or not 1 <= recurrence.month_day <= _days_in(recurrence.month):
            raise RecurrenceError("bad_month_day")
        return f"FREQ=YEARLY;BYMONTH={recurrence.month};BYMONTHDAY={recurrence.month_day};{clock}"
    raise RecurrenceError("bad_kind", recurrence.kind)


def _days_in(month: int) -> int:
    # The most a month can have (29 for February: a leap-year date is a valid yearly date).
    return 29 if month == 2 else 30 if month in (4, 6, 9, 11) else 31


def normalise_rule(text: str) -> str:
    """A raw RRULE from the API, checked: ``FREQ=…;…`` (an ``RRULE:`` prefix is dropped).

    Raises :class:`RecurrenceError` for what dateutil cannot read, a DTSTART (the start is its
    own field), a frequency finer than a minute, or a rule every minute or hour that names
    months or days of the month (one that can never match would be searched for years).
    """
    rule = text.strip()
    if rule.upper().startswith("RRULE:"):
        rule = rule[len("RRULE:") :]
    if not rule or len(rule) > RULE_MAX_CHARS:
        raise RecurrenceError("length")
    if any(char in rule for char in "\r\n") or "DTSTART" in rule.upper():
        raise RecurrenceError("one_rule")
    parsed = _parse(rule, datetime(2000, 1, 1))
    if parsed._freq not in FREQUENCIES:  # dateutil keeps the frequency there, unexposed
        raise RecurrenceError("frequency")
    names = {part.split("=", 1)[0].strip().upper() for part in rule.split(";")}
    if parsed._freq in (MINUTELY, HOURLY) and names & _DAY_FILTERS:
        # dateutil would search minute by minute, for years, for a day that may never come.
        raise RecurrenceError("sub_daily_filters")
    return rule


def _parse(rule: str, starts_local: datetime) -> rrule:
    try:
        parsed = rrulestr(rule, dtstart=starts_local)
    except (ValueError, TypeError, KeyError, IndexError) as error:
        raise RecurrenceError("unreadable", str(error)[:200]) from None
    if not isinstance(parsed, rrule):  # an RRULE value is one rule, never a set
        raise RecurrenceError("one_rule")
    return parsed


def to_utc(local: datetime, zone: ZoneInfo) -> datetime:
    """A naive wall time in ``zone`` as an aware UTC instant, by the rule in the module's
    docstring (RFC 5545: a missing time moves forward by the gap; a doubled one is the
    first)."""
    return local.replace(tzinfo=zone, fold=0).astimezone(UTC)


def to_local(instant: datetime, zone: ZoneInfo) -> datetime:
    """An aware instant as a naive wall time in ``zone``."""
    return instant.astimezone(zone).replace(tzinfo=None)


@dataclass(frozen=True)
class Rule:
    """A schedule's recurrence, ready to expand: the rule, its zone, its start and end (naive
    wall times in the zone)."""

    rule: str
    zone: str
    starts_local: datetime
    ends_local: datetime | None = None

    def instants(self, after: datetime, *, inclusive: bool = False) -> Iterator[datetime]:
        """The occurrences from ``after`` on (an aware instant), as UTC instants in order.

        Wall times come from the rule in order, but their instants need not: a time pushed
        forward by a gap can pass later ones. So each instant waits in a heap until the scan
        is a day past it (no later wall time can land before it then), and comes out in
        order, once. The scan starts a day before ``after``'s wall time for the same reason.
        """
        zone = ZoneInfo(self.zone)
        parsed = _parse(self.rule, self.starts_local)
        start = max(to_local(after, zone) - _SETTLE, self.starts_local)
        waiting: list[datetime] = []
        last: datetime | None = None

        def settled(before: datetime | None) -> Iterator[datetime]:
            nonlocal last
            while waiting and (before is None or waiting[0] < before):
                instant = heapq.heappop(waiting)
                if instant < after or (instant == after and not inclusive) or instant == last:
                    continue
                last = instant
                yield instant

        for local in parsed.xafter(start, inc=True):
            if self.ends_local is not None and local > self.ends_local:
                break
            instant = to_utc(local, zone)
            heapq.heappush(waiting, instant)
            yield from settled(instant - _SETTLE)
        yield from settled(None)

    def next(self, after: datetime, count: int = 1, *, inclusive: bool = False) -> list[datetime]:
        """The first ``count`` occurrences from ``after`` on."""
        return _take(self.instants(after, inclusive=inclusive), count)

    def comes_before(self, after: datetime, horizon: timedelta) -> bool:
        """Whether the rule, its COUNT aside, has an occurrence after ``after`` and within
        ``horizon`` of it. Bounded: dateutil searches a rule that can never match (the 30th
        of February, every minute) up to the year 9999, which a request must not wait for."""
        zone = ZoneInfo(self.zone)
        parsed = _parse(self.rule, self.starts_local)
        limit = to_local(after + horizon, zone)
        if self.ends_local is not None:
            limit = min(limit, self.ends_local)
        if limit < self.starts_local:
            return False
        bounded = parsed.replace(count=None, until=limit)
        start = max(to_local(after, zone), self.starts_local)
        return bounded.after(start, inc=True) is not None

    def first(self) -> datetime | None:
        """The first occurrence of all, or None for a rule with none."""
        found = self.next(to_utc(self.starts_local, ZoneInfo(self.zone)), inclusive=True)
        return found[0] if found else None


def _take(items: Iterable[datetime], count: int) -> list[datetime]:
    taken: list[datetime] = []
    for item in items:
        if len(taken) == count:
            break
        taken.append(item)
    return taken
