"""Channel mode's endpoints: LINE's webhook, the consent page's pairing poll, and the
channel's page for admins (who is an admin: the accounts port, ``relay/accounts.py``)."""

from __future__ import annotations

import logging

from flask import (
    Response,
    abort,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _

from notify_site.db_types import utcnow
from notify_site.extensions import db
from notify_site.relay import budgets, service
from notify_site.relay.accounts import accounts
from notify_site.relay.errors import BudgetError
from notify_site.relay.forms import BudgetForm
from notify_site.relay.line import monthly_limit, pairing, quota, webhook
from notify_site.relay.line.channel import ChannelConfigError, ChannelError, current_settings
from notify_site.relay.quota import quota_overview
from notify_site.relay.views.blueprint import bp
from notify_site.relay.views.errors import answer

log = logging.getLogger(__name__)


@bp.post("/line/webhook")
def line_webhook():
    """LINE's webhook: signature first, then store, answer 200 at once, process afterwards."""
    settings = current_settings()
    if settings is None:
        abort(404)
    body = request.get_data(cache=False)
    try:
        webhook.check_signature(settings, body, request.headers.get("X-Line-Signature"))
    except webhook.WebhookSignatureError as error:
        log.warning("relay: webhook refused: %s", error)
        return answer(403, "invalid signature")
    try:
        stored = webhook.store_events(body)
    except webhook.WebhookBodyError as error:
        log.warning("relay: webhook body refused: %s", error)
        return answer(400, str(error))
    response = answer(200, "ok")
    if stored.new_ids:
        app = current_app._get_current_object()
        ids = list(stored.new_ids)
        response.call_on_close(lambda: _process_after_response(app, ids))
    return response


def _process_after_response(app, event_ids: list[int]) -> None:
    """Handle the events just stored, after LINE has its 200 (the worker is the backstop)."""
    from notify_site.relay.line import events  # it loads the SDK's event models (channel.py)

    with app.app_context():
        try:
            settings = current_settings()
            if settings is not None:
                events.process_events(settings, event_ids)
        except Exception:
            db.session.rollback()
            log.exception("relay: processing webhook events after the response failed")
        finally:
            db.session.remove()


@bp.get("/line/pairing")
def line_pairing():
    """The consent page's poll: has its code reached the bot, and from which chat?

    The page's polling secret travels in the ``X-Relay-Pairing`` header, not the URL, so
    access logs never record it.
    """
    if current_settings() is None:
        abort(404)
    state = pairing.pairing_state(
        request.headers.get("X-Relay-Pairing", ""), client_pk=None, now=utcnow(), any_client=True
    )
    response = jsonify(state.as_json())
    response.headers["Cache-Control"] = "no-store"
    return response


def _admin_or_answer():
    """The signed-in admin, or the answer for anyone else (a sign-in redirect, or 403)."""
    person = accounts().current_person()
    if person is None:
        return None, redirect(
            accounts().sign_in_url(request.full_path if request.query_string else request.path)
        )
    if not person.is_admin:
        abort(403)
    return person, None


def _person_names() -> dict[int, str]:
    from sqlalchemy import select

    from notify_site.relay.models import RelayAccessToken

    ids = db.session.scalars(
        select(RelayAccessToken.person_id).where(RelayAccessToken.person_id.is_not(None)).distinct()
    )
    return accounts().display_names(list(ids))


@bp.post("/line/budgets")
def line_budget():
    """An admin sets (or removes) a monthly budget of LINE units."""
    person, refusal = _admin_or_answer()
    if person is None:
        return refusal
    form = BudgetForm()
    if form.validate_on_submit():
        raw = (form.units.data or "").strip()
        try:
            units = int(raw) if raw else None
        except ValueError:
            flash(_("A budget is a whole number of units from 0 to 10,000,000."), "error")
        else:
            try:
                budgets.save_budget(form.target.data or "", units, now=utcnow())
            except BudgetError as error:
                flash(error.message, "error")
            else:
                flash(_("The budget is saved."), "success")
    else:
        flash(
            _("The form expired or was not sent from this page. Go back, reload it and try again."),
            "error",
        )
    return redirect(url_for("relay.line_admin") + "#quota-title")


@bp.get("/line/admin")
def line_admin():
    """The channel at a glance, for admins: the month's units and budgets, LINE's quota,
    chats, pushes, webhook events. In sandbox mode: the month's units and budgets only."""
    person, refusal = _admin_or_answer()
    if person is None:
        return refusal
    settings = current_settings()
    report = report_error = pause = None
    if settings is not None:
        pause = monthly_limit.current_pause(settings)
        try:
            report = quota.channel_report(settings)
        except (ChannelError, ChannelConfigError) as error:
            report_error = str(error)
    overview = service.channel_overview()
    names = _person_names()
    form = BudgetForm()
    form.target.choices = budgets.budget_targets(names)
    response = Response(
        render_template(
            "relay/line_admin.html",
            settings=settings,
            report=report,
            report_error=report_error,
            pause=pause,
            recheck_minutes=current_app.config["RELAY_LINE_MONTHLY_RECHECK_MINUTES"],
            quota=quota_overview(current_app.config, utcnow(), names),
            budget_form=form,
            **overview,
        )
    )
    response.headers["Cache-Control"] = "no-store"
    return response
