"""Dated batches (services/schedules/batches.py): a CSV checked whole — one bad row and
nothing is stored, every bad row named by its line — and rows that repeat yearly."""

from __future__ import annotations

from datetime import time

import pytest
from sqlalchemy import func, select

from notify_site.extensions import db
from notify_site.models import Notification, Schedule, User
from notify_site.services.schedules import batches
from notify_site.services.sending import Sender
from tests.unit.schedules.conftest import utc

TOKYO = batches.BatchOptions(timezone="Asia/Tokyo", default_time=time(7, 30))

GOOD = (
    "date,time,connection,message\n"
    '2027-04-01,08:00,Family,"Happy birthday, Ken!"\n'
    "2027-05-02,,Family,Happy birthday Mari\n"
    "2027-06-03,21:15,Ops,Happy birthday Sho\n"
)


def upload(world, text: str, options=TOKYO):
    alice = db.session.get(User, world["alice"])
    return batches.create_batch(Sender.person(alice), batches.read_csv(text.encode()), options)


def counts() -> tuple[int, int]:
    return (
        db.session.scalar(select(func.count()).select_from(Notification)),
        db.session.scalar(select(func.count()).select_from(Schedule)),
    )


def test_a_good_file_schedules_every_row_in_the_batch_zone(app, world):
    with app.app_context():
        result = upload(world, GOOD)
        assert [(row.status, row.send_at) for row in result.notifications] == [
            ("scheduled", utc(2027, 3, 31, 23, 0)),  # 08:00 in Tokyo
            ("scheduled", utc(2027, 5, 1, 22, 30)),  # the default time, 07:30
            ("scheduled", utc(2027, 6, 3, 12, 15)),
        ]
        rows = db.session.scalars(select(Notification).order_by(Notification.id)).all()
        assert [row.message for row in rows][0] == "Happy birthday, Ken!"
        assert [row.connection_id for row in rows] == [world["family"]] * 2 + [world["ops"]]


def test_one_bad_row_stores_nothing_and_names_its_line(app, world):
    bad = GOOD.replace("2027-05-02,,Family", "2027-05-32,,Family")
    with app.app_context():
        with pytest.raises(batches.BatchError) as caught:
            upload(world, bad)
        assert [(p.line, p.reason) for p in caught.value.problems] == [
            (3, "date: 2027-05-32 is not a day of the calendar")
        ]
        assert counts() == (0, 0)


def test_every_bad_row_is_reported_with_its_line_and_reason(app, world):
    text = (
        "date,time,connection,message\n"
        "2027-04-01,08:00,Nobody,hi\n"  # 2: no such chat
        '"2027-04-02",25:00,Family,hi\n'  # 3: no such time
        "2026-12-31,08:00,Family,hi\n"  # 4: in the past
        '2027-04-01,08:00,Family,"two\n'
        'lines"\n'  # 5-6: fine, a quoted line break
        "2027-04-01,08:00,Bob's,\n"  # 7: someone else's chat, no message
        "April 1,08:00,Family,hi\n"  # 8: not ISO
        "2027-04-01,08:00,Family\n"  # 9: a field short
    )
    with app.app_context():
        with pytest.raises(batches.BatchError) as caught:
            upload(world, text)
        problems = {p.line: p.reason for p in caught.value.problems}
        assert sorted(problems) == [2, 3, 4, 7, 8, 9]
        assert problems[2] == "connection: no connection 'Nobody'"
        assert problems[3] == "time: give it as HH:MM (24-hour)"
        assert problems[4] == "date and time: must be in the future"
        assert problems[7].startswith("connection: no connection")
        assert "message: is required" in problems[7]
        assert problems[8] == "date: give it as YYYY-MM-DD"
        assert problems[9].startswith("has 3 fields, the header 4")
        assert counts() == (0, 0)


def test_a_file_without_its_header_or_default_time_is_refused(app, world):
    with app.app_context():
        with pytest.raises(batches.BatchError) as caught:
            upload(world, "2027-04-01,08:00,Family,hi\n")
        assert caught.value.problems[0].line == 1
        no_default = batches.BatchOptions(timezone="Asia/Tokyo")
        with pytest.raises(batches.BatchError) as caught:
            upload(world, "date,connection,message\n2027-04-01,Family,hi\n", no_default)
        assert [(p.line, p.reason) for p in caught.value.problems] == [
            (2, "time: empty, and the batch has no default time")
        ]
        with pytest.raises(batches.BatchError):
            batches.read_csv(b"\xff\xfe not utf-8")


def test_yearly_rows_become_yearly_schedules_even_for_past_dates(app, world, clock):
    yearly = batches.BatchOptions(timezone="Asia/Tokyo", default_time=time(7, 0), yearly=True)
    text = (
        "date,connection,message\n"
        "1990-01-03,Family,Happy birthday Ken\n"  # came round this year already: next year
        "1992-02-29,Family,Happy birthday Mari\n"  # leap years only
        "1985-06-03,Ops,Happy birthday Sho\n"
    )
    with app.app_context():
        result = upload(world, text, yearly)
        assert result.notifications == []
        assert [(s.rrule, s.next_run_at) for s in result.schedules] == [
            (
                "FREQ=YEARLY;BYMONTH=1;BYMONTHDAY=3;BYHOUR=7;BYMINUTE=0;BYSECOND=0",
                utc(2028, 1, 2, 22),
            ),
            (
                "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29;BYHOUR=7;BYMINUTE=0;BYSECOND=0",
                utc(2028, 2, 28, 22),
            ),
            (
                "FREQ=YEARLY;BYMONTH=6;BYMONTHDAY=3;BYHOUR=7;BYMINUTE=0;BYSECOND=0",
                utc(2027, 6, 2, 22),
            ),
        ]
        assert counts() == (0, 3)


def test_json_rows_are_numbered_from_one(app, world):
    rows = batches.read_json(
        [
            {"date": "2027-04-01", "time": "08:00", "connection": "Family", "message": "hi"},
            {"date": "2027-04-01", "connection": "Family", "message": "hi"},
        ]
    )
    with app.app_context():
        alice = db.session.get(User, world["alice"])
        with pytest.raises(batches.BatchError) as caught:
            batches.create_batch(
                Sender.person(alice), rows, batches.BatchOptions(timezone="Asia/Tokyo")
            )
        assert [p.line for p in caught.value.problems] == [2]
