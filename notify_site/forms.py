"""The site's forms (Flask-WTF: every one carries a CSRF token).

Labels and messages are lazy strings: the classes are built at import, and each request
reads them in its own language. Every form is a :class:`~notify_site.web.forms.BaseForm`,
whose WTForms messages (a field that is not a number, ...) come from the catalogue too.
"""

from __future__ import annotations

from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from wtforms import PasswordField, SelectField, SelectMultipleField, StringField
from wtforms.validators import (
    DataRequired,
    EqualTo,
    InputRequired,
    Length,
    Optional,
    Regexp,
    ValidationError,
)

from notify_site.services import plain_text_reason
from notify_site.web.forms import BaseForm

REQUIRED = _l("This field is required.")


def at_most(limit: int) -> Length:
    return Length(max=limit, message=_l("Field cannot be longer than %(max)d characters."))


def plain_text(form, field) -> None:
    """A WTForms validator for every free-text field whose value reaches the database."""
    reason = plain_text_reason(field.data) if isinstance(field.data, str) else None
    if reason:
        raise ValidationError(reason)


def chats_field() -> SelectMultipleField:
    """The person's chats to send to, as checkboxes (the send form, the webhooks' forms).

    The template lists the person's active connections. The choice is not checked here but
    by the send use case's find_targets, which says *why* an id is unusable (unknown,
    revoked...).
    """
    return SelectMultipleField(
        _l("Send to"),
        coerce=int,
        validate_choice=False,
        validators=[InputRequired(message=_l("Choose at least one chat."))],
        invalid_value_message=_l("Choose chats from the list."),
    )


class LoginForm(BaseForm):
    username = StringField(
        _l("Username"),
        validators=[DataRequired(REQUIRED), at_most(64), plain_text],
        render_kw={"autocomplete": "username"},
    )
    password = PasswordField(
        _l("Password"),
        validators=[DataRequired(REQUIRED), at_most(200)],
        render_kw={"autocomplete": "current-password"},
    )


def new_password_field(label) -> PasswordField:
    """A new password: 8 to 200 characters (as services/accounts.py checks)."""
    return PasswordField(
        label,
        validators=[
            DataRequired(REQUIRED),
            Length(
                min=8,
                max=200,
                message=_l("Field must be between %(min)d and %(max)d characters long."),
            ),
        ],
        description=_l("At least 8 characters."),
        render_kw={"autocomplete": "new-password"},
    )


def repeat_field(other: str) -> PasswordField:
    return PasswordField(
        _l("Repeat password"),
        validators=[DataRequired(REQUIRED), EqualTo(other, message=_l("The passwords differ."))],
        render_kw={"autocomplete": "new-password"},
    )


class RegisterForm(BaseForm):
    username = StringField(
        _l("Username"),
        validators=[
            DataRequired(REQUIRED),
            Length(
                min=3,
                max=64,
                message=_l("Field must be between %(min)d and %(max)d characters long."),
            ),
            Regexp(
                r"^[A-Za-z0-9_.-]+$",
                message=_l("Use letters, digits, dots, dashes or underscores."),
            ),
        ],
        render_kw={"autocomplete": "username"},
    )
    password = new_password_field(_l("Password"))
    confirm = repeat_field("password")


class PasswordChangeForm(BaseForm):
    """Settings: a new password, confirmed with the current one."""

    current_password = PasswordField(
        _l("Current password"),
        validators=[DataRequired(REQUIRED), at_most(200)],
        render_kw={"autocomplete": "current-password"},
    )
    new_password = new_password_field(_l("New password"))
    confirm_password = repeat_field("new_password")


class SetPasswordForm(BaseForm):
    """Settings, for an account made by signing in with LINE: its first password."""

    new_password = new_password_field(_l("New password"))
    confirm_password = repeat_field("new_password")


class DeleteAccountForm(BaseForm):
    """Settings: deleting the account, confirmed with its password."""

    password = PasswordField(
        _l("Your password"),
        validators=[DataRequired(REQUIRED), at_most(200)],
        render_kw={"autocomplete": "current-password"},
    )


class ConnectForm(BaseForm):
    label = StringField(
        _l("Label"),
        description=_l("A name for this chat on this site, e.g. “Ops alerts”."),
        validators=[DataRequired(REQUIRED), at_most(64), plain_text],
        filters=[lambda value: value.strip() if value else value],
    )


class RenameForm(BaseForm):
    """A connection's new label."""

    label = StringField(
        _l("New label"),
        validators=[DataRequired(REQUIRED), at_most(64), plain_text],
        filters=[lambda value: value.strip() if value else value],
    )


class ConfirmForm(BaseForm):
    """An empty form: a POST button that carries only the CSRF token."""


class LanguageForm(BaseForm):
    """The footer's switcher: one button per language (works signed out too)."""

    locale = StringField(validators=[DataRequired(REQUIRED)])
    next = StringField(validators=[Optional()])


def _valid_zone(form, field) -> None:
    from notify_site.i18n import is_valid_timezone

    if field.data and not is_valid_timezone(field.data):
        raise ValidationError(
            gettext(
                "“%(zone)s” is not a time zone this site knows, e.g. Asia/Tokyo.", zone=field.data
            )
        )


class SettingsForm(BaseForm):
    locale = SelectField(
        _l("Language"),
        description=_l("Automatic follows your browser's language."),
        validate_choice=True,
    )
    timezone = StringField(
        _l("Time zone"),
        description=_l(
            "An IANA name such as Asia/Tokyo or Asia/Taipei. Empty: your language's usual zone."
        ),
        validators=[Optional(), at_most(64), plain_text, _valid_zone],
        filters=[lambda value: value.strip() if value else value],
        render_kw={"list": "timezone-options", "autocomplete": "off", "spellcheck": "false"},
    )
