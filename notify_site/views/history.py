"""The History page (issue 20): every one of the person's notifications, newest first, with
the filters of ``GET /api/v1/notifications`` (chat, status, days, text), 50 a page by cursor.

The form is a GET (the filters are in the URL, so a filtered page can be bookmarked and the
back button works); days are read in the person's time zone. A value that cannot be read
(a hand-edited URL) is left out of the filter and said so, never a 500.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from flask import Blueprint, render_template, request
from flask_babel import get_timezone
from flask_babel import gettext as _
from flask_login import current_user, login_required

from notify_site.i18n import zone_name
from notify_site.plain_text import read_number, text_problem
from notify_site.services import connections as connections_service
from notify_site.services import history

bp = Blueprint("history", __name__)

PER_PAGE = 50
TEXT_MAX = 200


def _day(name: str, problems: list[str]) -> date | None:
    raw = request.args.get(name, "").strip()
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        problems.append(_("“%(value)s” is not a date: that filter was left out.", value=raw[:40]))
        return None


def _start_of(day: date | None) -> datetime | None:
    return None if day is None else datetime.combine(day, time(), tzinfo=get_timezone())


@bp.get("/history")
@login_required
def index():
    problems: list[str] = []
    chats = connections_service.list_connections(current_user)
    state: dict[str, str] = {}
    connection_id = None
    raw_chat = request.args.get("connection", "")
    if (number := read_number(raw_chat)) in {c.id for c in chats}:
        connection_id = number
        state["connection"] = raw_chat
    status = request.args.get("status", "")
    if status in history.STATUSES:
        state["status"] = status
    else:
        status = None
    since, until = _day("since", problems), _day("until", problems)
    if since:
        state["since"] = since.isoformat()
    if until:
        state["until"] = until.isoformat()
    text = request.args.get("q", "").strip()[:TEXT_MAX]
    if text and text_problem(text, multiline=True) is not None:
        # No message holds it (none is stored with one), and PostgreSQL cannot compare it.
        problems.append(_("The search text holds a control character: that filter was left out."))
        text = ""
    if text:
        state["q"] = text
    wanted = history.HistoryFilter(
        connection_id=connection_id,
        status=status,
        since=_start_of(since),
        until=_start_of(until + timedelta(days=1)) if until else None,  # the whole last day
        text=text or None,
    )
    cursor = request.args.get("cursor", "")
    try:
        page = history.history(current_user, wanted, cursor=cursor or None, per_page=PER_PAGE)
    except history.BadCursorError:
        cursor = ""
        page = history.history(current_user, wanted, per_page=PER_PAGE)
    return render_template(
        "history/index.html",
        page=page,
        chats=chats,
        state=state,
        filtered=bool(state),
        cursor=cursor,
        problems=problems,
        statuses=history.STATUSES,
        zone=zone_name(),
    )
