"""Register, sign in, sign out."""

from __future__ import annotations

from flask import (
    Blueprint,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import current_user, login_required, login_user, logout_user

from notify_site.forms import ConfirmForm, LoginForm, RegisterForm
from notify_site.ratelimit import client_address, login_throttle
from notify_site.security import safe_local_path
from notify_site.services import ServiceError, accounts, line_accounts
from notify_site.views import line_login

bp = Blueprint("auth", __name__)


def _safe_next() -> str:
    """Where to go after signing in: the ``next`` page only if it is one of this site's routes."""
    return safe_local_path(request.args.get("next")) or url_for("connections.index")


@bp.route("/register", methods=["GET", "POST"])
def register():
    if not current_app.config["REGISTRATION_OPEN"]:
        flash(_("Registration is closed on this site. Ask an admin for an account."), "error")
        return redirect(url_for("auth.login"))
    form = RegisterForm()
    if form.validate_on_submit():
        try:
            user = accounts.register(form.username.data, form.password.data)
        except ServiceError as error:
            form.username.errors.append(str(error))
        else:
            session.clear()
            _sign_in(user)
            flash(_("Welcome! Connect a LINE chat to start sending notifications."), "success")
            return redirect(url_for("connections.index"))
    return render_template("auth/register.html", form=form)


@bp.route("/login", methods=["GET", "POST"])
def login():
    if current_user.is_authenticated:
        return redirect(url_for("connections.index"))
    form = LoginForm()
    if form.validate_on_submit():
        throttle = login_throttle()
        address = client_address()  # the proxy's client when PROXY_FIX_X_FOR trusts it
        wait = throttle.attempt(form.username.data, address)
        if wait:
            # Refused before the password is checked, so guessing on gains nothing; the same
            # answer whether or not the account exists.
            minutes = -(-wait // 60)
            flash(
                ngettext(
                    "Too many failed sign-ins for this username from your network. "
                    "Try again in %(num)s minute.",
                    "Too many failed sign-ins for this username from your network. "
                    "Try again in %(num)s minutes.",
                    minutes,
                ),
                "error",
            )
            page = _login_page(form)
            return page, 429, {"Retry-After": str(wait)}
        try:
            user = accounts.authenticate(form.username.data, form.password.data)
        except accounts.AccountDisabledError as error:
            flash(str(error), "error")
            return _login_page(form), 403
        if user is None:
            form.password.errors.append(_("Wrong username or password."))
        else:
            throttle.succeeded(form.username.data, address)
            target = _safe_next()
            # A LINE sign-in that no account held waits for this one (views/line_login.py).
            pending = line_login.take_pending()
            # A fresh session at sign-in: nothing planted before it survives (session fixation).
            session.clear()
            _sign_in(user)
            if pending is not None:
                line_login.link_pending(user, pending)
                return redirect(url_for("settings.index"))
            return redirect(target)
    return _login_page(form)


def _login_page(form: LoginForm) -> str:
    return render_template(
        "auth/login.html",
        form=form,
        line_login=line_accounts.configured(),
        line_form=ConfirmForm(formdata=None),
        line_pending=line_login.pending_sign_in() is not None,
    )


def _sign_in(user) -> None:
    """Sign ``user`` in to this browser: a session that lasts ``PERMANENT_SESSION_LIFETIME``
    from the last visit (Flask renews the cookie's expiry on each request)."""
    session.permanent = True
    login_user(user)


@bp.post("/logout")
@login_required
def logout():
    form = ConfirmForm()
    if form.validate_on_submit():
        # Ends every session of the account, copies of this cookie included (services/accounts).
        accounts.sign_out(current_user)
        logout_user()
        session.clear()
        flash(_("You are signed out, on this device and every other."), "info")
    return redirect(url_for("auth.login"))
