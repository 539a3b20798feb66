"""``/admin``: the quota dashboard across every connection, for admins only (SPEC 4.5).

The page, its parts and its data endpoints share one set of query parameters, so what the page
shows, the parts that refresh it (``/admin/parts`` and ``/admin/charts``: HTML fragments drawn
by the page's own template macros, swapped in by static/js/parts.js) and an internal system
reading the JSON all see the same figures:

=================  =========================================================================
``page``           connections page (50 a page), ``user`` (a username) and ``status`` filters
``stuck_page``     page of the stuck notifications
``failed_page``    page of the notifications failed in the last 24 hours
``keys_page``      page of the API keys
``hours``          the chart's window: 24 or 48
=================  =========================================================================

People are sent to sign in (HTML) or get a 403 page. The data endpoints and the fragments
answer 401 or 403 as JSON, and besides a session they take an admin's API key
(``Authorization: Bearer nsk_…``), so a monitoring system can read them without a browser.
"""

from __future__ import annotations

from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user
from flask_wtf.csrf import generate_csrf
from markupsafe import Markup

from notify_site import seams, serialisers
from notify_site.charts import Series, bar_chart, chart_key
from notify_site.extensions import login_manager
from notify_site.forms import ConfirmForm
from notify_site.i18n import hour_label, zone_name
from notify_site.models import User
from notify_site.plain_text import read_number, read_page, text_problem
from notify_site.services import admin as service
from notify_site.services import api_keys
from notify_site.services.accounts import AccountDisabledError
from notify_site.services.quota import Gauge

bp = Blueprint("admin", __name__, url_prefix="/admin")

# Endpoints read by scripts: JSON errors, and an admin's API key is accepted.
DATA_ENDPOINTS = {
    "admin.summary_json",
    "admin.connections_json",
    "admin.notifications_json",
    "admin.api_keys_json",
    "admin.parts",
    "admin.charts_fragment",
}
PAGE_PARAMS = ("page", "stuck_page", "failed_page", "keys_page")
NO_STORE = {"Cache-Control": "no-store"}
USERNAME_MAX_CHARS = 64


def _json_error(status: int, code: str, message: str) -> Response:
    return serialisers.error_response(status, code, message, headers=NO_STORE)


def _api_key_user() -> User | None:
    """The owner of the valid API key sent as ``Authorization: Bearer …``, else None.

    Raises :class:`AccountDisabledError` for a disabled account's key.
    """
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    api_key = api_keys.authenticate(token.strip())
    if api_key is None:
        return None
    api_keys.touch(api_key)
    return api_key.owner


@bp.before_request
def require_admin():
    data = request.endpoint in DATA_ENDPOINTS
    user = current_user if current_user.is_authenticated else None
    if data and user is None and "Authorization" in request.headers:
        try:
            user = _api_key_user()
        except AccountDisabledError as error:
            return _json_error(403, "account_disabled", str(error))
        if user is None:
            return _json_error(401, "unauthorized", _("The API key is not valid."))
    if user is None:
        if data:
            return _json_error(
                401, "unauthorized", _("Sign in as an admin, or send an admin's key.")
            )
        return login_manager.unauthorized()
    if not user.is_admin:
        if data:
            return _json_error(403, "forbidden", _("Only admins may read this."))
        abort(403, _("This page is for admins only."))
    g.admin = user
    return None


# --- query parameters ----------------------------------------------------------------------


def _int_arg(name: str) -> int:
    """A page number from the query string: 1 when missing or not a positive number."""
    return read_page(request.args.get(name))


def _state() -> dict[str, Any]:
    """The page's parameters, validated, without the defaults (for links and redirects)."""
    state: dict[str, Any] = {}
    username = request.args.get("user", "").strip()[:USERNAME_MAX_CHARS]
    # No account's name holds a control character, and PostgreSQL cannot even compare NUL.
    if username and text_problem(username) is None:
        state["user"] = username
    status = request.args.get("status", "")
    if status in service.CONNECTION_STATUSES:
        state["status"] = status
    for name in PAGE_PARAMS:
        if _int_arg(name) > 1:
            state[name] = _int_arg(name)
    hours = read_number(request.args.get("hours", ""))
    if hours in service.CHART_HOURS and hours != 24:
        state["hours"] = hours
    return state


def _hours(state: dict[str, Any]) -> int:
    return state.get("hours", 24)


def _json(payload: dict[str, Any]) -> Response:
    response = jsonify(payload)
    response.headers.update(NO_STORE)
    return response


def _connections(state: dict[str, Any]) -> service.Page[service.AdminConnection]:
    return service.list_connections(
        username=state.get("user"), status=state.get("status"), page=state.get("page", 1)
    )


# Each chart is drawn twice, and admin.css shows one: a wide drawing for desktops and a narrow
# one for phones, so the axis text is readable at either size (an SVG scales its text too).
CHART_SIZES = {"wide": (960, 200, 2), "narrow": (400, 170, 4)}
FAILURE_CHART_HEIGHTS = {"wide": 110, "narrow": 100}


def _charts(chart: service.HourlyChart) -> dict[str, Markup]:
    """The page's two charts (all, and failures on their own scale) at both sizes."""
    hours = len(chart.hours)
    labels = [hour_label(hour, "HH") for hour in chart.hours]
    both = [
        Series(_("Delivered"), chart.delivered, "chart-series-1"),
        Series(_("Failed"), chart.failed, "chart-series-2"),
    ]
    failed = [Series(_("Failed"), chart.failed, "chart-series-2")]
    zone = zone_name()
    drawn = {}
    for size, (width, height, every) in CHART_SIZES.items():
        label_every = every * hours // 24
        drawn[f"main_{size}"] = bar_chart(
            labels,
            both,
            title=_(
                "Deliveries and failures per hour, last %(hours)s hours (%(zone)s)",
                hours=hours,
                zone=zone,
            ),
            width=width,
            height=height,
            label_every=label_every,
        )
        drawn[f"failed_{size}"] = bar_chart(
            labels,
            failed,
            title=_("Failures per hour, last %(hours)s hours (%(zone)s)", hours=hours, zone=zone),
            width=width,
            height=FAILURE_CHART_HEIGHTS[size],
            label_every=label_every,
        )
    return drawn


# --- the page ------------------------------------------------------------------------------


def _page_context(state: dict[str, Any]) -> dict[str, Any]:
    """What the page and its refreshing parts (templates/admin/_parts.html) are drawn from."""
    summary = service.summary(_hours(state))
    # Each owner's link is this plus the name (one url_for per page, not one per row).
    owner_base = url_for("admin.index", hours=state.get("hours"))
    owner_base += ("&" if "hours" in state else "?") + "user="

    def page_url(param: str, number: int, anchor: str) -> str:
        args = {**state, param: number}
        if number <= 1:
            args.pop(param)
        return url_for("admin.index", **args, _anchor=anchor)

    return {
        "state": state,
        "summary": summary,
        "now": summary.generated_at,
        "hours": _hours(state),
        "chart_key": chart_key(serialisers.HOURLY_CHART.dump(summary.chart)),
        "connections": _connections(state),
        "stuck": service.list_problem_notifications("stuck", page=state.get("stuck_page", 1)),
        "failed": service.list_problem_notifications("failed", page=state.get("failed_page", 1)),
        "keys": service.list_api_keys(page=state.get("keys_page", 1)),
        "page_url": page_url,
        "owner_base": owner_base,
        "action_form": ConfirmForm(),
        "gauge": Gauge,
    }


def _notices() -> list[str]:
    """What other houses want admins to see first (the relay: its monthly LINE quota)."""
    return [
        text for warnings in seams.items(current_app, seams.ADMIN_NOTICES) for text in warnings()
    ]


@bp.get("")
def index():
    state = _state()
    context = _page_context(state)
    return render_template(
        "admin/index.html",
        **context,
        notices=_notices(),
        charts=_charts(context["summary"].chart),
        statuses=service.CONNECTION_STATUSES,
        stuck_after_minutes=int(service.STUCK_AFTER.total_seconds() // 60),
    )


@bp.get("/parts")
def parts():
    """The parts of the page that refresh themselves, as an HTML fragment (same query)."""
    body = render_template("admin/parts.html", **_page_context(_state()))
    return body, 200, NO_STORE


# --- data endpoints ------------------------------------------------------------------------


@bp.get("/summary.json")
def summary_json():
    payload = serialisers.SUMMARY.dump(service.summary(_hours(_state())))
    if current_user.is_authenticated:
        # A page left open refreshes its forms' token from here, so Retry still works later.
        payload["csrf_token"] = generate_csrf()
    return _json(payload)


@bp.get("/connections.json")
def connections_json():
    state = _state()
    result = _connections(state)
    return _json(
        {
            "connections": serialisers.ADMIN_CONNECTION.dump(result.items, many=True),
            **serialisers.ADMIN_PAGE.dump(result),
            "filters": {"user": state.get("user"), "status": state.get("status")},
        }
    )


@bp.get("/notifications.json")
def notifications_json():
    kind = request.args.get("list", "stuck")
    if kind not in service.NOTIFICATION_LISTS:
        return _json_error(400, "bad_request", _("list must be “stuck” or “failed”."))
    page = _int_arg("page")
    result = service.list_problem_notifications(kind, page=page)
    items = []
    for item in result.items:
        record = serialisers.ADMIN_NOTIFICATION.dump(item)
        if item.can_retry:
            record["retry_url"] = url_for("admin.retry", notification_id=item.id)
        if item.can_cancel:
            record["cancel_url"] = url_for("admin.cancel", notification_id=item.id)
        items.append(record)
    return _json({"list": kind, "notifications": items, **serialisers.ADMIN_PAGE.dump(result)})


@bp.get("/api-keys.json")
def api_keys_json():
    result = service.list_api_keys(page=_int_arg("page"))
    return _json(
        {
            "api_keys": serialisers.ADMIN_API_KEY.dump(result.items, many=True),
            **serialisers.ADMIN_PAGE.dump(result),
        }
    )


@bp.get("/charts")
def charts_fragment():
    """The charts as the page draws them (an HTML fragment), for the page's refresh."""
    state = _state()
    chart = service.deliveries_per_hour(_hours(state))
    body = render_template("admin/charts.html", charts=_charts(chart), hours=_hours(state))
    return body, 200, NO_STORE


# --- actions -------------------------------------------------------------------------------


def _act(notification_id: int, action, done: str, anchor: str):
    if not ConfirmForm().validate_on_submit():
        abort(400)
    try:
        action(g.admin, notification_id)
    except service.NotificationNotFoundError as error:
        abort(404, str(error))
    except service.NotificationActionError as error:
        flash(str(error), "error")
    else:
        flash(done, "success")
    return redirect(url_for("admin.index", **_state(), _anchor=anchor))


@bp.post("/notifications/<int:notification_id>/retry")
def retry(notification_id: int):
    return _act(
        notification_id,
        service.retry_notification,
        _("Notification %(id)s is queued again.", id=notification_id),
        "failed",
    )


@bp.post("/notifications/<int:notification_id>/cancel")
def cancel(notification_id: int):
    return _act(
        notification_id,
        service.cancel_notification,
        _("Notification %(id)s is cancelled.", id=notification_id),
        "stuck",
    )
