"""Following a notification the Notify server accepted but has not delivered yet.

This site's relay, in channel mode, answers ``/api/notify`` with LINE's own outcome when LINE
answers in time, and otherwise with 200 and the extension ``"delivery": "pending"`` plus a
``messageId`` (README, "What a 200 means in channel mode"). Such a notification is not
*delivered*: it waits, ``at_server``, and a worker job asks the server
(``GET /api/messages/<id>``, :meth:`NotifyClient.message_state`, which spends no call) every
``DELIVERY_FOLLOW_SECONDS`` until the server says delivered or refused. A plain Notify server
never says pending: its 200 stands, as with LINE Notify.

Each state change is a conditional UPDATE on ``status = 'at_server'``, so two workers asking
about the same row at once write the same answer once, and an admin's action on the row in
the meantime is not overwritten.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from flask import Flask, current_app
from sqlalchemy import select, update

from notify_site import seams
from notify_site.db_types import utcnow
from notify_site.extensions import db
from notify_site.models import Notification, NotificationStatus
from notify_site.notify_client import NotifyError
from notify_site.services.delivery import connection_token
from notify_site.services.notify_clients import notify_client
from notify_site.services.retry import MONTHLY_LIMIT
from notify_site.stored_text import columns, site_text

BATCH = 50
#: A row whose connection has no usable token any more is looked at again this much later.
NO_TOKEN_WAIT = timedelta(hours=1)


def init_app(app: Flask) -> None:
    """Follow pending notifications in every worker, beside the deliveries (a worker job)."""
    seams.add(app, seams.WORKER_JOBS, worker_job)


def worker_job(app: Flask, stopping: Callable[[], bool]) -> int:
    """One round for the worker; returns how many notifications reached a final state (a row
    still pending is work for a later round, not this one)."""
    with app.app_context():
        try:
            interval = timedelta(seconds=float(current_app.config["DELIVERY_FOLLOW_SECONDS"]))
            return follow_due(utcnow(), interval, stopping)
        except Exception:
            db.session.rollback()
            raise
        finally:
            db.session.remove()


def follow_due(
    now: datetime, interval: timedelta, stopping: Callable[[], bool] = lambda: False
) -> int:
    """Ask the server about every ``at_server`` notification that is due; commits. Returns
    how many are final now."""
    rows = db.session.execute(
        select(Notification.id, Notification.connection_id, Notification.remote_message_id)
        .where(
            Notification.status == NotificationStatus.AT_SERVER,
            Notification.next_attempt_at <= now,
        )
        .order_by(Notification.next_attempt_at, Notification.id)
        .limit(BATCH)
    ).all()
    db.session.commit()
    final = 0
    for notification_id, connection_id, message_id in rows:
        if stopping():
            break
        final += _follow_one(notification_id, connection_id, message_id, now, interval)
    return final


def _follow_one(
    notification_id: int,
    connection_id: int,
    message_id: str | None,
    now: datetime,
    interval: timedelta,
) -> int:
    token = connection_token(connection_id)
    db.session.commit()  # no transaction open during the call
    if token is None or not message_id:
        _write(notification_id, {"next_attempt_at": now + NO_TOKEN_WAIT})
        return 0
    try:
        state = notify_client().message_state(token, message_id)
    except (NotifyError, ValueError):
        _write(notification_id, {"next_attempt_at": utcnow() + interval})
        return 0
    done = utcnow()
    if state.delivery == "delivered":
        values = {"status": NotificationStatus.DELIVERED, "finished_at": done}
        values.update(columns("last_error", None))
    elif state.delivery == "monthly_limit":
        values = {"status": NotificationStatus.FAILED, "finished_at": done}
        values.update(columns("last_error", MONTHLY_LIMIT))
    elif state.delivery == "failed":
        values = {"status": NotificationStatus.FAILED, "finished_at": done}
        reason = site_text("refused_by_server", reason=state.reason or "no reason given")
        values.update(columns("last_error", reason))
    else:  # still pending at the server
        _write(notification_id, {"next_attempt_at": done + interval})
        return 0
    return int(_write(notification_id, values))


def _write(notification_id: int, values: dict) -> bool:
    written = db.session.execute(
        update(Notification)
        .where(
            Notification.id == notification_id,
            Notification.status == NotificationStatus.AT_SERVER,
        )
        .values(**values, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.commit()
    return written == 1
