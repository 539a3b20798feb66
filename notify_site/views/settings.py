"""Language and time zone: the footer's switcher (anyone) and the settings page (users)."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import refresh
from flask_login import current_user, login_required
from werkzeug.wrappers import Response

from notify_site import i18n
from notify_site.forms import LanguageForm, SettingsForm
from notify_site.security import safe_local_path

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


@bp.route("/settings", methods=["GET", "POST"])
@login_required
def index():
    form = _settings_form()
    if request.method == "GET":
        form.locale.data = current_user.locale or ""
        form.timezone.data = current_user.timezone or ""
    elif form.validate_on_submit():
        locale = form.locale.data or None
        i18n.save_preferences(current_user, locale=locale, timezone=form.timezone.data or None)
        refresh()  # the flash below is in the language just chosen
        flash(_("Your settings are saved."), "success")
        response = redirect(url_for("settings.index"))
        return _remember(response, locale) if locale else response
    status = 400 if form.errors else 200
    return render_template(
        "settings/index.html",
        form=form,
        suggested_zones=SUGGESTED_ZONES,
        default_zone=i18n.DEFAULT_TIMEZONES.get(str(i18n.select_locale()), "UTC"),
    ), status
