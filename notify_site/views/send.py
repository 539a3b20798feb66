"""Sending from the browser (SPEC 4.3): the send form, and a status page that follows delivery.

The view reads the form (its content checked once, by notify_content, in forms_send), calls the
send use case (:func:`notify_site.services.sending.send`) and redirects to the status page; a
worker delivers the rows (SPEC 4.4).
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import format_decimal, get_timezone, ngettext
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy import func, select
from werkzeug.exceptions import RequestEntityTooLarge

from notify_site import serialisers
from notify_site.extensions import db
from notify_site.forms_send import SendForm
from notify_site.i18n import time_text
from notify_site.models import Connection, Notification, NotificationStatus
from notify_site.notify_content import IMAGE_MAX_BYTES
from notify_site.plain_text import read_number
from notify_site.services import notifications as service
from notify_site.services import sending

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
    sender = sending.Sender.person(current_user)
    targets = _chosen(form)
    if content is None or form.has_errors:
        # Nothing is sent; still say at once whether the chosen chats could receive it.
        if targets:
            _check_targets(form, sender, targets)
    else:
        send_at = _send_at(form)
        try:
            result = sending.send(
                sender,
                targets,
                content,
                options=sending.SendOptions(source=sending.Source.FORM, send_at=send_at),
            )
        except (sending.UnknownConnectionError, sending.InactiveConnectionError) as error:
            form.add_error("connections", str(error))
        except service.NotificationValidationError as error:
            for name, reason in error.fields.items():
                form.add_error(name, reason)
        else:
            count = len(result.notifications)
            if send_at is not None:
                flash(
                    ngettext(
                        "Scheduled %(num)s notification for %(time)s.",
                        "Scheduled %(num)s notifications for %(time)s.",
                        count,
                        time=time_text(send_at),
                    ),
                    "success",
                )
                return redirect(url_for("schedules.scheduled"))
            flash(
                ngettext("Queued %(num)s notification.", "Queued %(num)s notifications.", count),
                "success",
            )
            ids = ",".join(str(row.id) for row in result.notifications)
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


def _send_at(form: SendForm) -> datetime | None:
    """The *Send later* wall time, placed in the person's zone (a time the zone skips moves
    forward by the gap; one it has twice is the first, as for schedules)."""
    if form.send_at.data is None:
        return None
    zone = ZoneInfo(str(get_timezone()))
    return form.send_at.data.replace(tzinfo=zone, fold=0).astimezone(UTC)


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


def _chosen(form: SendForm) -> list[int]:
    """The chats ticked, or [] when the connections field already has an error."""
    if form.connections.errors:
        return []
    return form.connections.data or []


def _check_targets(form: SendForm, sender: sending.Sender, targets: list[int]) -> None:
    """Put beside the connections why the send would refuse one of them (see send)."""
    try:
        sending.find_targets(sender, targets)
    except (sending.UnknownConnectionError, sending.InactiveConnectionError) as error:
        form.add_error("connections", str(error))


def _requested_ids() -> list[int]:
    """The ``ids`` parameter, ``1,2,3``; anything else is a bad request."""
    raw = request.args.get("ids", "")
    parts = [part.strip() for part in raw.split(",") if part.strip()]
    ids = [read_number(part) for part in parts]
    if not ids or len(ids) > MAX_STATUS_IDS or None in ids:
        abort(400, _("The status page needs ids=1,2,3: the notifications to follow."))
    return list(dict.fromkeys(ids))


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
        "notifications": serialisers.NOTIFICATION_STATE.dump(rows, many=True),
        "done": _is_done(rows),
    }
    return response, 200, {"Cache-Control": "no-store"}
