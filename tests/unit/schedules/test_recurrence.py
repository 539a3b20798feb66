"""Recurrence alone (services/schedules/recurrence.py): each kind of rule, and daylight saving
in both directions. Pure: no app, no database, no clock."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from notify_site.services.schedules.recurrence import (
    Recurrence,
    RecurrenceError,
    Rule,
    build_rule,
    normalise_rule,
    to_local,
)

NEW_YORK = "America/New_York"


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def local_times(rule: Rule, after: datetime, count: int) -> list[str]:
    zone = ZoneInfo(rule.zone)
    return [to_local(at, zone).strftime("%Y-%m-%d %a %H:%M") for at in rule.next(after, count)]


def test_daily_builds_a_rule_with_the_time_of_day():
    assert build_rule(Recurrence("daily", time(7, 30))) == (
        "FREQ=DAILY;BYHOUR=7;BYMINUTE=30;BYSECOND=0"
    )


def test_a_daily_0730_in_tokyo_is_2230_utc_the_day_before():
    rule = Rule(build_rule(Recurrence("daily", time(7, 30))), "Asia/Tokyo", datetime(2027, 1, 1))
    assert rule.next(utc(2027, 1, 10, 0, 0), 2) == [
        utc(2027, 1, 10, 22, 30),
        utc(2027, 1, 11, 22, 30),
    ]


def test_weekly_on_chosen_days():
    rule = Rule(
        build_rule(Recurrence("weekly", time(9, 0), weekdays=(4, 0))), "UTC", datetime(2027, 1, 1)
    )
    assert "BYDAY=MO,FR" in rule.rule
    assert local_times(rule, utc(2027, 1, 1), 4) == [
        "2027-01-01 Fri 09:00",
        "2027-01-04 Mon 09:00",
        "2027-01-08 Fri 09:00",
        "2027-01-11 Mon 09:00",
    ]


def test_monthly_on_the_31st_skips_months_without_one():
    rule = Rule(
        build_rule(Recurrence("monthly", time(8, 0), month_day=31)), "UTC", datetime(2027, 1, 1)
    )
    assert local_times(rule, utc(2027, 1, 1), 3) == [
        "2027-01-31 Sun 08:00",
        "2027-03-31 Wed 08:00",
        "2027-05-31 Mon 08:00",
    ]


def test_yearly_on_29_february_only_in_leap_years():
    rule = Rule(
        build_rule(Recurrence("yearly", time(7, 0), month=2, month_day=29)),
        "Asia/Tokyo",
        datetime(2027, 1, 1),
    )
    assert local_times(rule, utc(2027, 1, 1), 2) == ["2028-02-29 Tue 07:00", "2032-02-29 Sun 07:00"]


def test_yearly_on_a_date():
    rule = Rule(
        build_rule(Recurrence("yearly", time(7, 30), month=4, month_day=1)),
        "UTC",
        datetime(2026, 4, 1),
    )
    assert local_times(rule, utc(2027, 1, 1), 2) == ["2027-04-01 Thu 07:30", "2028-04-01 Sat 07:30"]


def test_a_daily_0900_in_new_york_stays_0900_across_both_changes():
    rule = Rule(build_rule(Recurrence("daily", time(9, 0))), NEW_YORK, datetime(2027, 1, 1))
    # Spring forward on 2027-03-14: 14:00 UTC (EST) becomes 13:00 UTC (EDT).
    assert rule.next(utc(2027, 3, 13), 2) == [utc(2027, 3, 13, 14), utc(2027, 3, 14, 13)]
    # Fall back on 2027-11-07: 13:00 UTC becomes 14:00 UTC again.
    assert rule.next(utc(2027, 11, 6), 2) == [utc(2027, 11, 6, 13), utc(2027, 11, 7, 14)]
    assert local_times(rule, utc(2027, 3, 12), 4) == [
        "2027-03-12 Fri 09:00",
        "2027-03-13 Sat 09:00",
        "2027-03-14 Sun 09:00",
        "2027-03-15 Mon 09:00",
    ]


def test_a_time_that_does_not_exist_moves_forward_by_the_gap():
    # 02:30 does not exist in New York on 2027-03-14 (02:00 EST → 03:00 EDT).
    rule = Rule(build_rule(Recurrence("daily", time(2, 30))), NEW_YORK, datetime(2027, 1, 1))
    assert rule.next(utc(2027, 3, 13), 3) == [
        utc(2027, 3, 13, 7, 30),  # 02:30 EST
        utc(2027, 3, 14, 7, 30),  # "02:30" read as EST = 03:30 EDT: moved forward an hour
        utc(2027, 3, 15, 6, 30),  # 02:30 EDT
    ]
    assert local_times(rule, utc(2027, 3, 14), 2) == [
        "2027-03-14 Sun 03:30",
        "2027-03-15 Mon 02:30",
    ]


def test_a_time_that_exists_twice_is_the_first_and_sent_once():
    # 01:30 comes twice in New York on 2027-11-07: 05:30 UTC (EDT) and 06:30 UTC (EST).
    rule = Rule(build_rule(Recurrence("daily", time(1, 30))), NEW_YORK, datetime(2027, 1, 1))
    assert rule.next(utc(2027, 11, 6), 3) == [
        utc(2027, 11, 6, 5, 30),  # 01:30 EDT
        utc(2027, 11, 7, 5, 30),  # the first 01:30, in EDT; not again at 06:30 UTC
        utc(2027, 11, 8, 6, 30),  # 01:30 EST
    ]


def test_an_hourly_rule_across_the_gap_has_no_occurrence_twice():
    # 02:00 and 02:30 are pushed to 03:00 and 03:30, where 03:00 and 03:30 already are.
    rule = Rule("FREQ=MINUTELY;INTERVAL=30", NEW_YORK, datetime(2027, 3, 14, 1, 0))
    found = rule.next(utc(2027, 3, 14, 5, 59), 5)
    assert found == sorted(set(found))
    assert local_times(rule, utc(2027, 3, 14, 5, 59), 4) == [
        "2027-03-14 Sun 01:00",
        "2027-03-14 Sun 01:30",
        "2027-03-14 Sun 03:00",
        "2027-03-14 Sun 03:30",
    ]


def test_an_end_and_a_count_stop_the_rule():
    daily = build_rule(Recurrence("daily", time(9, 0)))
    ended = Rule(daily, "UTC", datetime(2027, 1, 1), ends_local=datetime(2027, 1, 3, 9, 0))
    assert len(ended.next(utc(2026, 12, 1), 10)) == 3
    counted = Rule(daily + ";COUNT=2", "UTC", datetime(2027, 1, 1))
    assert counted.next(utc(2027, 1, 1, 10), 10) == [utc(2027, 1, 2, 9)]


def test_a_raw_rrule_is_checked():
    assert normalise_rule(" RRULE:FREQ=WEEKLY;BYDAY=MO ") == "FREQ=WEEKLY;BYDAY=MO"
    for bad, code in [
        ("FREQ=SECONDLY", "frequency"),
        ("FREQ=MINUTELY;BYMONTH=2;BYMONTHDAY=30", "sub_daily_filters"),
        ("DTSTART:20270101T000000\nRRULE:FREQ=DAILY", "one_rule"),
        ("FREQ=FORTNIGHTLY", "unreadable"),
        ("BYDAY=XX", "unreadable"),
        ("", "length"),
    ]:
        with pytest.raises(RecurrenceError) as caught:
            normalise_rule(bad)
        assert caught.value.code == code, bad


@pytest.mark.parametrize(
    ("recurrence", "code"),
    [
        (Recurrence("weekly", time(9, 0)), "no_weekdays"),
        (Recurrence("monthly", time(9, 0), month_day=32), "bad_month_day"),
        (Recurrence("yearly", time(9, 0), month=2, month_day=30), "bad_month_day"),
        (Recurrence("yearly", time(9, 0), month_day=1), "bad_month"),
        (Recurrence("hourly", time(9, 0)), "bad_kind"),
    ],
)
def test_a_recurrence_without_the_days_it_needs_is_refused(recurrence, code):
    with pytest.raises(RecurrenceError) as caught:
        build_rule(recurrence)
    assert caught.value.code == code


def test_a_rule_that_never_comes_is_found_out_quickly():
    never = Rule("FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30", "UTC", datetime(2027, 1, 1))
    assert not never.comes_before(utc(2027, 1, 1), timedelta(days=3660))
    counted_out = Rule("FREQ=DAILY;COUNT=2", "UTC", datetime(2027, 1, 1))
    assert counted_out.comes_before(utc(2027, 1, 10), timedelta(days=1))  # COUNT aside
    assert counted_out.next(utc(2027, 1, 10)) == []
