"""Sending from the browser (SPEC 4.3): the send form, and a status page that follows delivery.

The view only queues: it writes the notification rows through the notifications service and
redirects to the status page; a worker delivers them (SPEC 4.4).
"""

from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import format_decimal, ngettext
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy import func, select
from werkzeug.exceptions import RequestEntityTooLarge

from notify_site import stored_text
from notify_site.extensions import db
from notify_site.forms_send import SendForm
from notify_site.models import Connection, Notification, NotificationStatus
from notify_site.notify_content import IMAGE_MAX_BYTES
from notify_site.services import notifications as service

bp = Blueprint("send", __name__)

# The status page follows one send: one row per chosen chat. More ids than any user has
# chats is not a status page but a scan.
MAX_STATUS_IDS = 100


@bp.route("/send", methods=["GET", "POST"])
@login_required
def index():
    connections = service.active_connections(current_user)
    if not connections:
        return render_template("send/index.html", form=None, inactive=_inactive_count()), (
            400 if request.method == "POST" else 200
        )
    form = SendForm()
    if not form.is_submitted():
        form.connections.data = _preselected(connections)
        return render_template("send/index.html", form=form, connections=connections)

    form.validate()  # types and presence; the content rules come next
    content = form.checked_content()
    targets = _targets(form)
    if content is not None and not form.has_errors:
        try:
            rows = service.queue_notifications(current_user, targets, content)
        except service.NotificationValidationError as error:
            for name, reason in error.fields.items():
                form.add_error(name, reason)
        else:
            count = len(rows)
            flash(
                ngettext("Queued %(num)s notification.", "Queued %(num)s notifications.", count),
                "success",
            )
            ids = ",".join(str(row.id) for row in rows)
            return redirect(url_for("send.status", ids=ids))
    return render_template("send/index.html", form=form, connections=connections), 400


@bp.errorhandler(RequestEntityTooLarge)
def form_too_large(error: RequestEntityTooLarge):
    """A send whose body is over MAX_CONTENT_LENGTH (a huge file, usually): the form again,
    empty (the body was not read), saying why nothing was sent and what the limits are."""
    limit = current_app.config.get("MAX_CONTENT_LENGTH") or 0
    message = _(
        "Nothing was sent: the form was larger than %(limit)s, the most this site reads. "
        "An image file may be at most %(image)s.",
        limit=_size(limit),
        image=_size(IMAGE_MAX_BYTES),
    )
    connections = service.active_connections(current_user) if current_user.is_authenticated else []
    if not connections:
        return render_template("errors/error.html", status=413, message=message), 413
    form = SendForm(formdata=None)
    form.connections.data = _preselected(connections)
    page = render_template(
        "send/index.html", form=form, connections=connections, form_error=message
    )
    return page, 413


def _size(size: int) -> str:
    """A byte count as people read it: 12 MiB, 64 KiB."""
    if size >= 1024 * 1024:
        return f"{format_decimal(size / (1024 * 1024), format='#,##0.#')} MiB"
    return f"{format_decimal(size / 1024, format='#,##0.#')} KiB"


def _inactive_count() -> int:
    """How many of the user's chats exist but cannot receive messages (revoked, unreachable,
    in error): the send page then says so, rather than "connect a chat first"."""
    return db.session.scalar(
        select(func.count()).select_from(Connection).where(Connection.owner_id == current_user.id)
    )


def _preselected(connections: list[Connection]) -> list[int]:
    """The only chat there is, or the one named by ``?connection=<id>``."""
    if len(connections) == 1:
        return [connections[0].id]
    wanted = request.args.get("connection", type=int)
    return [c.id for c in connections if c.id == wanted]


def _targets(form: SendForm) -> list[Connection]:
    """The chosen connections, or [] with an error beside the connections field."""
    if form.connections.errors or not form.connections.data:
        return []
    try:
        targets = service.find_connections(current_user, form.connections.data)
    except (service.UnknownConnectionError, service.InactiveConnectionError) as error:
        form.add_error("connections", str(error))
        return []
    # find_connections lets an admin name anyone's connection (as the API does); this form
    # offers only the user's own chats, so it accepts only those.
    foreign = [c for c in targets if c.owner_id != current_user.id]
    if foreign:
        form.add_error("connections", _("no connection %(id)s", id=foreign[0].id))
        return []
    return targets


def _requested_ids() -> list[int]:
    """The ``ids`` parameter, ``1,2,3``; anything else is a bad request."""
    raw = request.args.get("ids", "")
    parts = [part.strip() for part in raw.split(",") if part.strip()]
    if not parts or len(parts) > MAX_STATUS_IDS or not all(p.isdigit() for p in parts):
        abort(400, _("The status page needs ids=1,2,3: the notifications to follow."))
    return list(dict.fromkeys(int(part) for part in parts))


def _own_notifications(ids: list[int]) -> list[Notification]:
    # get_notifications lets an admin read anyone's rows (as the API does); this page follows
    # what the user sent from the form, so it shows only the user's own, admin or not.
    rows = service.get_notifications(current_user, ids)
    return [row for row in rows if row.owner_id == current_user.id]


def _is_done(rows: list[Notification]) -> bool:
    return all(row.status in NotificationStatus.TERMINAL for row in rows)


@bp.get("/send/status")
@login_required
def status():
    rows = _own_notifications(_requested_ids())
    if not rows:
        abort(404, _("No such notifications."))
    return render_template(
        "send/status.html",
        notifications=rows,
        done=_is_done(rows),
        json_url=url_for("send.status_json", ids=",".join(str(row.id) for row in rows)),
    )


@bp.get("/send/status.json")
def status_json():
    # Not @login_required: that redirects to the sign-in page, and a script polling for JSON
    # would follow it to HTML. The error handler answers 401 as JSON to JSON callers.
    if not current_user.is_authenticated:
        abort(401, _("Sign in to follow your notifications."))
    rows = _own_notifications(_requested_ids())
    response = {
        "notifications": [
            {
                "id": row.id,
                "status": row.status,
                "attempts": row.attempts,
                "last_error": row.last_error,
                "last_error_text": stored_text.shown_column(row, "last_error"),
                "finished_at": row.finished_at.isoformat() if row.finished_at else None,
            }
            for row in rows
        ],
        "done": _is_done(rows),
    }
    return response, 200, {"Cache-Control": "no-store"}
