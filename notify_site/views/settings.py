"""The footer's language switcher (anyone), and the settings page (users): language and time
zone, changing the password, deleting the account."""

from __future__ import annotations

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import refresh
from flask_login import current_user, login_required, login_user, logout_user
from werkzeug.wrappers import Response

from notify_site import i18n
from notify_site.forms import (
    ConfirmForm,
    DeleteAccountForm,
    LanguageForm,
    PasswordChangeForm,
    SetPasswordForm,
    SettingsForm,
)
from notify_site.security import safe_local_path
from notify_site.services import account_deletion, accounts, line_accounts

bp = Blueprint("settings", __name__)

# Zones offered as suggestions beside the time-zone field (any IANA zone is accepted).
SUGGESTED_ZONES = (
    "Asia/Tokyo",
    "Asia/Taipei",
    "Asia/Bangkok",
    "Asia/Hong_Kong",
    "Asia/Seoul",
    "Asia/Singapore",
    "Europe/London",
    "America/New_York",
    "America/Los_Angeles",
    "UTC",
)


def _remember(response: Response, locale: str) -> Response:
    response.set_cookie(
        i18n.COOKIE_NAME,
        locale,
        max_age=i18n.COOKIE_MAX_AGE,
        httponly=True,
        samesite="Lax",
        secure=current_app.config.get("SESSION_COOKIE_SECURE", False),
    )
    return response


@bp.post("/language")
def language():
    form = LanguageForm()
    if not form.validate_on_submit() or form.locale.data not in i18n.LANGUAGES:
        abort(400, _("Choose one of the languages offered."))
    locale = form.locale.data
    if current_user.is_authenticated:
        i18n.save_preferences(current_user, locale=locale, timezone=current_user.timezone)
    target = safe_local_path(form.next.data) or url_for("main.index")
    return _remember(redirect(target), locale)


def _settings_form() -> SettingsForm:
    form = SettingsForm()
    form.locale.choices = [("", str(_l("Automatic"))), *i18n.LANGUAGES.items()]
    return form


def _password_form(formdata=None) -> PasswordChangeForm | SetPasswordForm:
    """Change the password; or, for an account made with LINE that has none, set one."""
    if current_user.password_hash is None:
        return SetPasswordForm(formdata=formdata)
    return PasswordChangeForm(formdata=formdata)


def _settings_page(form: SettingsForm, password_form, status: int = 200):
    return render_template(
        "settings/index.html",
        form=form,
        password_form=password_form,
        line_login=line_accounts.configured(),
        line_form=ConfirmForm(formdata=None),
        suggested_zones=SUGGESTED_ZONES,
        default_zone=i18n.DEFAULT_TIMEZONES.get(str(i18n.select_locale()), "UTC"),
    ), status


def _current_settings() -> SettingsForm:
    """The language form showing the saved choices (whatever another form posted)."""
    form = _settings_form()
    form.locale.data = current_user.locale or ""
    form.timezone.data = current_user.timezone or ""
    return form


@bp.route("/settings", methods=["GET", "POST"])
@login_required
def index():
    if request.method == "GET":
        return _settings_page(_current_settings(), _password_form())
    form = _settings_form()
    if form.validate_on_submit():
        locale = form.locale.data or None
        i18n.save_preferences(current_user, locale=locale, timezone=form.timezone.data or None)
        refresh()  # the flash below is in the language just chosen
        flash(_("Your settings are saved."), "success")
        response = redirect(url_for("settings.index"))
        return _remember(response, locale) if locale else response
    status = 400 if form.errors else 200
    return _settings_page(form, _password_form(), status)


@bp.post("/settings/password")
@login_required
def password():
    form = _password_form(request.form)
    if form.validate_on_submit():
        current = form.current_password.data if hasattr(form, "current_password") else ""
        try:
            accounts.change_password(current_user, current, form.new_password.data)
        except accounts.WrongPasswordError as error:
            form.current_password.errors.append(str(error))
        except accounts.PasswordRuleError as error:
            form.new_password.errors.append(str(error))
        else:
            # Every session of the account ended; this one carries on under the new epoch.
            login_user(current_user._get_current_object())
            flash(_("Your password is changed. Your other sessions are signed out."), "success")
            return redirect(url_for("settings.index"))
    return _settings_page(_current_settings(), form, 400)


@bp.route("/settings/delete-account", methods=["GET", "POST"])
@login_required
def delete_account():
    form = DeleteAccountForm()
    if form.validate_on_submit():
        try:
            account_deletion.delete_account(current_user, form.password.data)
        except accounts.WrongPasswordError as error:
            form.password.errors.append(str(error))
        except (account_deletion.AccountDeletionError, accounts.AdminRuleError) as error:
            flash(str(error), "error")
        else:
            logout_user()
            session.clear()
            flash(_("Your account is deleted."), "success")
            return redirect(url_for("auth.login"))
    status = 400 if request.method == "POST" else 200
    return render_template(
        "settings/delete_account.html",
        form=form,
        preview=account_deletion.deletion_preview(current_user),
    ), status
