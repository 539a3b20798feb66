"""The relay's forms (Flask-WTF: each carries a CSRF token).

Like the site's forms they are :class:`~notify_site.web.forms.BaseForm` forms (shared
plumbing): labels are lazy strings and WTForms' built-in messages (an expired CSRF token, a
choice that is not a number) come from the app's catalogue, in the page's language.
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import HiddenField, RadioField, SelectField, StringField, SubmitField
from wtforms.validators import DataRequired

from notify_site.web.forms import BaseForm


def _optional_int(value: object) -> int | None:
    if value in (None, ""):
        return None
    return int(value)  # type: ignore[arg-type]  # WTForms turns ValueError into a field error


class AuthorizeForm(BaseForm):
    """The consent form: the OAuth parameters ride along hidden and are checked again on POST."""

    response_type = HiddenField()
    client_id = HiddenField()
    redirect_uri = HiddenField()
    scope = HiddenField()
    state = HiddenField()
    response_mode = HiddenField()
    code_challenge = HiddenField()
    code_challenge_method = HiddenField()
    # Channel mode: the page's pairing (its polling secret) and the code it shows.
    pairing = HiddenField()
    pairing_code = HiddenField()
    # The choices are the chats on offer, set by the view; the service checks the choice.
    chat = RadioField(_l("Send notifications to"), coerce=_optional_int, validate_choice=False)
    agree = SubmitField(_l("Agree and connect"))
    cancel = SubmitField(_l("Cancel"))


class GenerateTokenForm(BaseForm):
    """My page's *Generate token*: a name and one of the person's own chats (the service
    checks both again)."""

    name = StringField(
        _l("Token name"),
        validators=[DataRequired()],  # the length and the characters: tokens.check_token_name
        description=_l("Shown before each message, as [name] message."),
    )
    chat = RadioField(
        _l("Send notifications to"),
        coerce=_optional_int,
        validate_choice=False,
        validators=[DataRequired(_l("Choose a chat."))],
    )
    generate = SubmitField(_l("Generate token"))


class ConfirmForm(BaseForm):
    """A button whose POST changes something (Disconnect): only the CSRF token rides along."""


class PairForm(BaseForm):
    """My page's *Pair a chat* (channel mode): the page's pairing, as on the consent page."""

    pairing = HiddenField()
    pairing_code = HiddenField()
    agree = SubmitField(_l("Add this chat"))


class BudgetForm(BaseForm):
    """The LINE page's budget form (admins): what for, and the monthly units (empty: none)."""

    target = SelectField(_l("Budget for"), validate_choice=False)
    units = StringField(
        _l("Units a month"),
        description=_l("Leave empty to remove the budget (the channel then uses LINE's limit)."),
    )
    save = SubmitField(_l("Save budget"))
