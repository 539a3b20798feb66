"""Scheduled sends in the browser (SPEC 9): the Scheduled page (what waits to be sent later,
with Cancel), recurring schedules (list, create, detail with the next five occurrences in the
person's time zone, pause, resume, delete) and a dated batch's upload.

Thin, as every view: read the form, call one service, map its errors beside the fields.
Wall times are the person's (Settings, else their language's zone); the services take them
with the zone's name.
"""

from __future__ import annotations

from datetime import datetime, time

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import get_timezone, ngettext
from flask_babel import gettext as _
from flask_login import current_user, login_required

from notify_site.forms import ConfirmForm
from notify_site.forms_schedules import MONTH_NAMES, WEEKDAY_NAMES, BatchForm, ScheduleForm
from notify_site.i18n import is_valid_timezone
from notify_site.models import Schedule
from notify_site.plain_text import read_page
from notify_site.services import notifications, sending
from notify_site.services.schedules import batches, manage, upcoming
from notify_site.services.schedules.recurrence import WEEKDAYS, Recurrence, RecurrenceError
from notify_site.services.schedules.recurrence import build_rule as build_rrule

bp = Blueprint("schedules", __name__)

PER_PAGE = 25


def _zone() -> str:
    return str(get_timezone())


def _page_url(endpoint: str):
    def page_url(param: str, number: int, anchor: str) -> str:
        args = {param: number} if number > 1 else {}
        return url_for(endpoint, **args, _anchor=anchor)

    return page_url


# ---------------------------------------------------------------------------- send later


@bp.get("/scheduled")
@login_required
def scheduled():
    page = read_page(request.args.get("page"))
    return render_template(
        "schedules/scheduled.html",
        rows=upcoming.scheduled_notifications(current_user, page=page, per_page=PER_PAGE),
        page_url=_page_url("schedules.scheduled"),
        action_form=ConfirmForm(),
    )


@bp.post("/scheduled/<int:notification_id>/cancel")
@login_required
def cancel(notification_id: int):
    if not ConfirmForm().validate_on_submit():
        abort(400)
    try:
        notifications.cancel_scheduled(current_user, notification_id)
    except notifications.NotificationNotFoundError:
        abort(404)
    except notifications.NotCancellableError as error:
        flash(str(error), "error")
    else:
        flash(_("Cancelled: it will not be sent."), "success")
    return redirect(url_for("schedules.scheduled"))


# ---------------------------------------------------------------------------- schedules


def describe(schedule: Schedule) -> str:
    """How a schedule repeats, in words ("Every day at 07:30"); a raw RRULE as it is."""
    parts = dict(part.split("=", 1) for part in schedule.rrule.split(";") if "=" in part)
    try:
        at = time(int(parts["BYHOUR"]), int(parts["BYMINUTE"])).strftime("%H:%M")
    except (KeyError, ValueError):
        return schedule.rrule
    kind = parts.get("FREQ")
    if kind == "DAILY" and set(parts) == {"FREQ", "BYHOUR", "BYMINUTE", "BYSECOND"}:
        return _("Every day at %(time)s", time=at)
    if kind == "WEEKLY" and "BYDAY" in parts:
        try:
            days = [str(WEEKDAY_NAMES[WEEKDAYS.index(day)]) for day in parts["BYDAY"].split(",")]
        except ValueError:
            return schedule.rrule
        return _("Every %(days)s at %(time)s", days=", ".join(days), time=at)
    if kind == "MONTHLY" and "BYMONTHDAY" in parts:
        return _("Every month on day %(day)s at %(time)s", day=parts["BYMONTHDAY"], time=at)
    if kind == "YEARLY" and "BYMONTH" in parts and "BYMONTHDAY" in parts:
        month = MONTH_NAMES[int(parts["BYMONTH"]) - 1]
        return _(
            "Every year on %(month)s %(day)s at %(time)s",
            month=month,
            day=parts["BYMONTHDAY"],
            time=at,
        )
    return schedule.rrule


@bp.get("/schedules")
@login_required
def index():
    page = read_page(request.args.get("page"))
    return render_template(
        "schedules/index.html",
        schedules=manage.list_schedules(current_user, page=page, per_page=PER_PAGE),
        describe=describe,
        page_url=_page_url("schedules.index"),
    )


@bp.route("/schedules/new", methods=["GET", "POST"])
@login_required
def new():
    connections = notifications.active_connections(current_user)
    form = ScheduleForm()
    if not form.is_submitted():
        form.timezone.data = _zone()
        if len(connections) == 1:
            form.connections.data = [connections[0].id]
        return render_template("schedules/new.html", form=form, connections=connections)
    form.validate()
    content = form.checked_content()
    rule = _rule(form)
    if content is not None and rule is not None and not form.has_errors:
        schedule = _create(form, content, rule)
        if schedule is not None:
            flash(_("Schedule “%(name)s” created.", name=schedule.name), "success")
            return redirect(url_for("schedules.detail", schedule_id=schedule.id))
    return render_template("schedules/new.html", form=form, connections=connections), 400


def _rule(form: ScheduleForm) -> str | None:
    if form.at.data is None or form.kind.errors:
        return None
    recurrence = Recurrence(
        kind=form.kind.data,
        at=form.at.data,
        weekdays=tuple(form.weekdays.data or ()),
        month_day=form.month_day.data,
        month=form.month.data,
    )
    try:
        return build_rrule(recurrence)
    except RecurrenceError as error:
        place = {"no_weekdays": "weekdays", "bad_month": "month"}.get(error.code, "month_day")
        form.add_error(place, manage.recurrence_reason(error))
        return None


def _create(form: ScheduleForm, content, rule: str) -> Schedule | None:
    ends = form.ends_on.data
    starts = form.starts_on.data
    draft = manage.ScheduleDraft(
        name=form.name.data or "",
        targets=form.connections.data or [],
        content=content,
        rule=rule,
        timezone=(form.timezone.data or "").strip(),
        starts_local=datetime.combine(starts, time()) if starts else None,
        ends_local=datetime.combine(ends, time(23, 59, 59)) if ends else None,
    )
    try:
        return manage.create_schedule(sending.Sender.person(current_user), draft)
    except manage.ScheduleValidationError as error:
        for name, reason in error.fields.items():
            form.add_error(form.SERVICE_FIELDS.get(name, name), reason)
    except (sending.UnknownConnectionError, sending.InactiveConnectionError) as error:
        form.add_error("connections", str(error))
    return None


@bp.get("/schedules/<int:schedule_id>")
@login_required
def detail(schedule_id: int):
    try:
        found = manage.schedule_detail(current_user, schedule_id)
    except manage.ScheduleNotFoundError:
        abort(404)
    return render_template(
        "schedules/detail.html",
        detail=found,
        schedule=found.schedule,
        describe=describe,
        action_form=ConfirmForm(),
        catch_up_hours=_catch_up_text(),
    )


def _catch_up_text() -> str:
    minutes = int(float(current_app.config["SCHEDULE_CATCH_UP_SECONDS"]) // 60)
    if minutes % 60 == 0:
        return ngettext("%(num)s hour", "%(num)s hours", minutes // 60)
    return ngettext("%(num)s minute", "%(num)s minutes", minutes)


def _act(schedule_id: int, action, done: str):
    if not ConfirmForm().validate_on_submit():
        abort(400)
    try:
        schedule = action(current_user, schedule_id)
    except manage.ScheduleNotFoundError:
        abort(404)
    except manage.ScheduleStateError as error:
        flash(str(error), "error")
    else:
        flash(done % {"name": schedule.name}, "success")
    return redirect(url_for("schedules.detail", schedule_id=schedule_id))


@bp.post("/schedules/<int:schedule_id>/pause")
@login_required
def pause(schedule_id: int):
    return _act(schedule_id, manage.pause_schedule, _("“%(name)s” is paused."))


@bp.post("/schedules/<int:schedule_id>/resume")
@login_required
def resume(schedule_id: int):
    return _act(
        schedule_id,
        manage.resume_schedule,
        _("“%(name)s” is running again, from its next occurrence."),
    )


@bp.post("/schedules/<int:schedule_id>/delete")
@login_required
def delete(schedule_id: int):
    if not ConfirmForm().validate_on_submit():
        abort(400)
    try:
        manage.delete_schedule(current_user, schedule_id)
    except manage.ScheduleNotFoundError:
        abort(404)
    flash(_("The schedule is deleted."), "success")
    return redirect(url_for("schedules.index"))


# ---------------------------------------------------------------------------- batches


@bp.route("/schedules/batch", methods=["GET", "POST"])
@login_required
def batch():
    form = BatchForm()
    if not form.is_submitted():
        form.timezone.data = _zone()
        return render_template("schedules/batch.html", form=form, problems=None)
    problems = None
    zone = (form.timezone.data or "").strip()
    if form.validate():
        upload = form.file.data
        if not upload:
            form.file.errors = [_("Choose a CSV file.")]
        elif not is_valid_timezone(zone):
            form.timezone.errors = [_("This is not a time zone this site knows.")]
        else:
            try:
                options = batches.BatchOptions(zone, form.default_time.data, bool(form.yearly.data))
                result = batches.create_batch(
                    sending.Sender.person(current_user), batches.read_csv(upload.read()), options
                )
            except batches.BatchError as error:
                problems = error.problems
            else:
                count = len(result.notifications) + len(result.schedules)
                flash(
                    ngettext("Scheduled %(num)s row.", "Scheduled %(num)s rows.", count),
                    "success",
                )
                target = "schedules.index" if result.schedules else "schedules.scheduled"
                return redirect(url_for(target))
    return render_template("schedules/batch.html", form=form, problems=problems), 400
