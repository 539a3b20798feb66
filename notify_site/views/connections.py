"""Connecting LINE chats (the OAuth client side) and managing the connections."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, session, url_for
from flask_babel import format_number
from flask_babel import gettext as _
from flask_login import current_user, login_required

from notify_site.extensions import csrf
from notify_site.forms import ConfirmForm, ConnectForm, RenameForm
from notify_site.services import connecting
from notify_site.services import connections as service

bp = Blueprint("connections", __name__)

# The browser's half of each pending connect flow: hashes of the states it started.
SESSION_STATES = "oauth_states"
MAX_PENDING_FLOWS = 5


@bp.get("/connections")
@login_required
def index():
    return render_template(
        "connections/index.html",
        connections=service.list_connections(current_user),
        form=ConnectForm(),
        action_form=ConfirmForm(),
    )


@bp.post("/connections")
@login_required
def connect():
    form = ConnectForm()
    if not form.validate_on_submit():
        return render_template(
            "connections/index.html",
            connections=service.list_connections(current_user),
            form=form,
            action_form=ConfirmForm(),
        ), 400
    try:
        pending = connecting.start_connect(current_user, form.label.data)
    except connecting.ConnectError as error:
        form.label.errors.append(str(error))
        return render_template(
            "connections/index.html",
            connections=service.list_connections(current_user),
            form=form,
            action_form=ConfirmForm(),
        ), 400
    states = session.get(SESSION_STATES, [])[-(MAX_PENDING_FLOWS - 1) :]
    session[SESSION_STATES] = [*states, pending.state_hash]
    return redirect(pending.authorize_url)


@bp.route("/callback", methods=["GET", "POST"])
@csrf.exempt  # the Notify server's answer carries `state`, which is this flow's CSRF defence
def callback():
    params = request.args if request.method == "GET" else request.form
    if not current_user.is_authenticated:
        if request.method == "POST" and "bounced" not in params:
            return _bounce(params)
        abort(
            400,
            _(
                "This answer does not belong to a connect flow started in this browser. "
                "Sign in and connect the chat again."
            ),
        )
    browser_states = session.get(SESSION_STATES, [])
    state = params.get("state")
    try:
        if params.get("error"):
            connecting.cancel_connect(current_user, state, browser_states, params["error"])
        connection = connecting.complete_connect(
            current_user, state, params.get("code"), browser_states
        )
    except connecting.StateError as error:
        abort(400, str(error))
    except connecting.AccessDeniedError as error:
        flash(str(error), "info")
        return redirect(url_for("connections.index"))
    except connecting.ConnectError as error:
        flash(str(error), "error")
        return redirect(url_for("connections.index"))
    finally:
        if state:
            done = connecting.hash_state(state)
            session[SESSION_STATES] = [h for h in browser_states if h != done]
    if connection.target_name:
        message = _(
            "Connected “%(label)s” to %(target)s.",
            label=connection.label,
            target=connection.target_name,
        )
    else:
        message = _("Connected “%(label)s” to the chat.", label=connection.label)
    flash(message, "success")
    twins = service.same_chat(connection)
    if twins:
        flash(
            _(
                "This chat is also connected as “%(labels)s”: a message sent to both arrives "
                "twice. Disconnect the one you no longer need.",
                labels="”, “".join(twin.label for twin in twins),
            ),
            "info",
        )
    return redirect(url_for("connections.index"))


def _bounce(params):
    """Re-post a cross-site ``form_post`` answer from this site's own origin.

    The Notify server's page posts the answer across sites, so the browser leaves the
    SameSite=Lax session cookie off that request. This page, now on our origin, posts the same
    fields back to the callback; that same-site POST carries the cookie, and the state can be
    checked against the browser's session. Nothing here touches the session, so no cookie is
    set on this cross-site answer.
    """
    fields = {
        key: params.get(key, "")[:2000]
        for key in ("code", "state", "error", "error_description")
        if key in params
    }
    response = render_template("connections/bounce.html", fields=fields)
    return response, 200, {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}


@bp.post("/connections/<int:connection_id>/revoke")
@login_required
def revoke(connection_id: int):
    if not ConfirmForm().validate_on_submit():
        abort(400)
    try:
        connection = service.revoke_connection(current_user, connection_id)
    except service.ConnectionNotFoundError:
        abort(404)
    except service.ConnectionActionError as error:
        flash(str(error), "error")
    else:
        flash(_("“%(label)s” is disconnected.", label=connection.label), "success")
    # Only the dashboard may be named as the way back: `next` is never a URL (no open redirect).
    return redirect(
        url_for(
            "dashboard.index" if request.args.get("next") == "dashboard" else "connections.index"
        )
    )


@bp.post("/connections/<int:connection_id>/label")
@login_required
def rename(connection_id: int):
    form = RenameForm()
    if not form.validate_on_submit():
        if form.csrf_token.errors:
            abort(400)
        flash(" ".join(str(error) for error in form.label.errors), "error")
        return redirect(url_for("connections.index"))
    try:
        old = service.get_connection(current_user, connection_id).label
        connection = service.rename_connection(current_user, connection_id, form.label.data)
    except service.ConnectionNotFoundError:
        abort(404)
    flash(_("“%(old)s” is now “%(label)s”.", old=old, label=connection.label), "success")
    return redirect(url_for("connections.index"))


@bp.post("/connections/<int:connection_id>/remove")
@login_required
def remove(connection_id: int):
    if not ConfirmForm().validate_on_submit():
        abort(400)
    try:
        connection = service.remove_connection(current_user, connection_id)
    except service.ConnectionNotFoundError:
        abort(404)
    except service.ConnectionActionError as error:
        flash(str(error), "error")
    else:
        flash(
            _(
                "“%(label)s” is off the list; its notifications stay in the history.",
                label=connection.label,
            ),
            "success",
        )
    return redirect(url_for("connections.index"))


@bp.post("/connections/<int:connection_id>/refresh")
@login_required
def refresh(connection_id: int):
    if not ConfirmForm().validate_on_submit():
        abort(400)
    try:
        connection = service.refresh_connection(current_user, connection_id)
    except service.ConnectionNotFoundError:
        abort(404)
    except service.ConnectionActionError as error:
        flash(str(error), "error")
    else:
        flash(
            _(
                "“%(label)s” checked: %(count)s calls left this hour.",
                label=connection.label,
                count=format_number(connection.rate_remaining)
                if connection.rate_remaining is not None
                else "—",
            ),
            "success",
        )
    # Only the dashboard may be named as the way back: `next` is never a URL (no open redirect).
    return redirect(
        url_for(
            "dashboard.index" if request.args.get("next") == "dashboard" else "connections.index"
        )
    )
