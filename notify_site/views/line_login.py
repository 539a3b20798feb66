"""Sign in with LINE (``services/line_accounts.py`` has the rules): start, LINE's callback,
the page that offers a new account or linking for a LINE account no account holds yet, and
Settings' link and unlink buttons.

A verified LINE sign-in that no account holds waits in the session (signed, so it cannot be
forged) for ``PENDING_SECONDS``: *Create an account* uses it, and so does the password sign-in
page (:func:`take_pending`), which links it to the account signed in.
"""

from __future__ import annotations

import time

from flask import Blueprint, abort, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user

from notify_site.forms import ConfirmForm
from notify_site.security import safe_local_path
from notify_site.services import ServiceError, accounts, line_accounts

bp = Blueprint("line_login", __name__)

STATES_KEY = "line_login_states"
PENDING_KEY = "line_login_pending"
NEXT_KEY = "line_login_next"
PENDING_SECONDS = 600
# The flows one browser may have open at once (each tab its own).
MAX_STATES = 5


def _start(user=None):
    try:
        pending = line_accounts.start(user)
    except ServiceError as error:
        flash(str(error), "error")
        return redirect(url_for("settings.index" if user else "auth.login"))
    states = [*session.get(STATES_KEY, []), pending.state_hash][-MAX_STATES:]
    session[STATES_KEY] = states
    return redirect(pending.authorize_url)


@bp.post("/login/line")
def start():
    """*Sign in with LINE*: to LINE's authorize page."""
    if not line_accounts.configured():
        abort(404)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    # Where the sign-in page was to lead (the relay's consent page...): this site's paths only.
    session[NEXT_KEY] = safe_local_path(request.args.get("next"))
    return _start()


@bp.post("/settings/line/link")
@login_required
def link():
    """Settings' *Link LINE*: the same flow, bound to this account."""
    if not line_accounts.configured():
        abort(404)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    return _start(current_user._get_current_object())


@bp.post("/settings/line/unlink")
@login_required
def unlink():
    if not ConfirmForm().validate_on_submit():
        abort(400)
    try:
        line_accounts.unlink(current_user)
    except ServiceError as error:
        flash(str(error), "error")
    else:
        flash(_("LINE is unlinked: sign in with your password from now on."), "success")
    return redirect(url_for("settings.index"))


def _problem(title: str, message: str, status: int = 400):
    # LINE's callback carries the code and the state in its query: not repeated on the page.
    page = render_template(
        "line_login/problem.html",
        title=title,
        message=message,
        language_next=url_for("auth.login"),
    )
    return page, status


@bp.get("/login/line/callback")
def callback():
    """LINE's answer: a code (or an error) and the state this browser was given."""
    if not line_accounts.configured():
        abort(404)
    args = request.args
    browser_states = list(session.get(STATES_KEY, []))
    try:
        if args.get("error"):
            line_accounts.cancel(args.get("state"), browser_states, args["error"])
        sign_in = line_accounts.complete(
            args.get("state"),
            args.get("code"),
            browser_states,
            args.get("friendship_status_changed"),
        )
    except line_accounts.LineDeniedError as error:
        return _problem(_("Not signed in with LINE"), str(error), 200)
    except ServiceError as error:
        return _problem(_("Sign in with LINE did not work"), str(error))
    finally:
        spent = line_accounts.hash_state(args.get("state") or "")
        session[STATES_KEY] = [h for h in browser_states if h != spent]

    if sign_in.linking_account_id is not None:
        return _finish_link(sign_in)
    try:
        user = line_accounts.account_for(sign_in)
    except accounts.AccountDisabledError as error:
        return _problem(_("Sign in with LINE did not work"), str(error), 403)
    if user is None:
        session[PENDING_KEY] = {
            "sub": sign_in.user_id,
            "name": sign_in.name,
            "friend": sign_in.friend,
            "until": int(time.time()) + PENDING_SECONDS,
        }
        return redirect(url_for("line_login.new_account"))
    target = session.get(NEXT_KEY) or url_for("connections.index")
    _sign_in(user)
    return redirect(target)


def _sign_in(user) -> None:
    """A fresh session (nothing planted before it survives), signed in as ``user``."""
    session.clear()
    session.permanent = True
    login_user(user)


def _finish_link(sign_in: line_accounts.LineSignIn):
    if not current_user.is_authenticated or current_user.id != sign_in.linking_account_id:
        return _problem(
            _("Sign in with LINE did not work"),
            _("This link was started by another account. Sign in and start again."),
            403,
        )
    try:
        line_accounts.link(current_user, sign_in.user_id, sign_in.friend)
    except ServiceError as error:
        flash(str(error), "error")
    else:
        flash(_("LINE is linked: you can sign in with LINE from now on."), "success")
    return redirect(url_for("settings.index"))


def pending_sign_in() -> dict | None:
    """The verified LINE sign-in waiting for an account, if it has not expired."""
    pending = session.get(PENDING_KEY)
    if not isinstance(pending, dict) or pending.get("until", 0) < time.time():
        return None
    return pending


def take_pending() -> dict | None:
    """The verified LINE sign-in waiting for an account, removed from the session."""
    pending = pending_sign_in()
    session.pop(PENDING_KEY, None)
    return pending


def link_pending(user, pending: dict) -> None:
    """After a password sign-in: link the LINE account that was waiting (flashes the result)."""
    try:
        line_accounts.link(user, pending["sub"], pending.get("friend"))
    except ServiceError as error:
        flash(str(error), "error")
    else:
        flash(_("LINE is linked: you can sign in with LINE from now on."), "success")


@bp.route("/login/line/new", methods=["GET", "POST"])
def new_account():
    """A LINE account no account holds: make a new account, or sign in to link it."""
    pending = pending_sign_in()
    if pending is None:
        return _problem(
            _("Sign in with LINE"),
            _("No LINE sign-in is waiting here (it lasts ten minutes): sign in with LINE first."),
            200,
        )
    form = ConfirmForm()
    if form.validate_on_submit():
        try:
            user = line_accounts.create_account(
                pending["sub"], pending.get("name") or "", pending.get("friend")
            )
        except ServiceError as error:
            flash(str(error), "error")
        else:
            target = session.get(NEXT_KEY) or url_for("connections.index")
            _sign_in(user)
            flash(_("Welcome! Your account signs in with LINE."), "success")
            return redirect(target)
    return render_template("line_login/new_account.html", form=form, name=pending.get("name"))
