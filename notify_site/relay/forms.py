"""The relay's forms (Flask-WTF: each carries a CSRF token)."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import HiddenField, RadioField, SubmitField


def _optional_int(value: object) -> int | None:
    if value in (None, ""):
        return None
    return int(value)  # type: ignore[arg-type]  # WTForms turns ValueError into a field error


class AuthorizeForm(FlaskForm):
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
    chat = RadioField("Send notifications to", coerce=_optional_int, validate_choice=False)
    agree = SubmitField("Agree and connect")
    cancel = SubmitField("Cancel")
