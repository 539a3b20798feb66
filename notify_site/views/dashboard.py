"""The user's dashboard (SPEC 4.5): quota gauges per connection, recent notifications, and
a chart of sends per hour.

The page keeps itself current with HTML fragments drawn by its own template macros
(templates/dashboard/_parts.html), swapped in by static/js/parts.js: ``/dashboard/parts``
every 15 s, ``/dashboard/chart`` when the hourly counts change. ``/dashboard.json`` has the
same figures for anyone's scripts."""

from __future__ import annotations

from dataclasses import dataclass

from flask import Blueprint, render_template
from flask_babel import gettext as _
from flask_login import current_user, login_required
from markupsafe import Markup

from notify_site import serialisers
from notify_site.charts import Series, bar_chart, chart_key
from notify_site.forms import ConfirmForm
from notify_site.i18n import hour_label, zone_name
from notify_site.services import dashboard as service
from notify_site.services.quota import Gauge

bp = Blueprint("dashboard", __name__)

NO_STORE = {"Cache-Control": "no-store"}


def _page_context(dashboard: service.Dashboard) -> dict:
    """What the page and its refreshing parts are drawn from."""
    return {
        "dashboard": dashboard,
        "chart_key": chart_key(serialisers.HOURLY_CHART.dump(dashboard.hourly)),
        "action_form": ConfirmForm(),
        "gauge": Gauge,
        "countdown": service.countdown_text,
        "excerpt": service.excerpt,
    }


@bp.get("/dashboard")
@login_required
def index():
    dashboard = service.load_dashboard(current_user)
    return render_template(
        "dashboard/index.html",
        **_page_context(dashboard),
        charts=sends_charts(dashboard.hourly),
    )


# Not @login_required: that redirects to the sign-in page, and a script polling for JSON or a
# fragment would follow it to HTML. A signed-out poll gets a 401 in the API's error shape.


@bp.get("/dashboard.json")
def data():
    if not current_user.is_authenticated:
        return _signed_out()
    return serialisers.DASHBOARD.dump(service.load_dashboard(current_user)), 200, NO_STORE


@bp.get("/dashboard/parts")
def parts():
    """The parts of the page that refresh themselves, as an HTML fragment."""
    if not current_user.is_authenticated:
        return _signed_out()
    context = _page_context(service.load_dashboard(current_user))
    return render_template("dashboard/parts.html", **context), 200, NO_STORE


@bp.get("/dashboard/chart")
def chart():
    """The chart and its legend, as an HTML fragment, for the page to swap in when the
    counts change."""
    if not current_user.is_authenticated:
        return _signed_out()
    hourly = service.hourly_sends(current_user)
    fragment = render_template("dashboard/chart.html", hourly=hourly, charts=sends_charts(hourly))
    return fragment, 200, NO_STORE


def _signed_out():
    return serialisers.error_response(
        401, "unauthorized", _("Sign in to see your dashboard."), headers=NO_STORE
    )


@dataclass(frozen=True)
class SendsCharts:
    wide: Markup
    narrow: Markup


def sends_charts(hourly: service.HourlySends) -> SendsCharts:
    """The bar chart of the hourly counts (delivered, failed and, if any, still pending),
    drawn for a wide screen and for a phone."""
    labels = [hour_label(hour) for hour in hourly.hours]
    series = [
        Series(_("Delivered"), hourly.delivered, "chart-series-1"),
        Series(_("Failed"), hourly.failed, "chart-series-2"),
    ]
    if hourly.total_pending:
        series.append(Series(_("Pending"), hourly.pending, "chart-series-3"))
    title = _("Notifications sent per hour, last 24 hours (%(zone)s)", zone=zone_name())
    return SendsCharts(
        wide=bar_chart(labels, series, title=title, width=720, height=200, label_every=3),
        narrow=bar_chart(labels, series, title=title, width=360, height=220, label_every=6),
    )
