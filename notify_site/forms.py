"""The site's forms (Flask-WTF: every one carries a CSRF token)."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, EqualTo, Length, Regexp


class LoginForm(FlaskForm):
    username = StringField("Username", validators=[DataRequired(), Length(max=64)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=200)])


class RegisterForm(FlaskForm):
    username = StringField(
        "Username",
        validators=[
            DataRequired(),
            Length(min=3, max=64),
            Regexp(
                r"^[A-Za-z0-9_.-]+$", message="Use letters, digits, dots, dashes or underscores."
            ),
        ],
    )
    password = PasswordField("Password", validators=[DataRequired(), Length(min=8, max=200)])
    confirm = PasswordField(
        "Repeat password",
        validators=[DataRequired(), EqualTo("password", message="The passwords differ.")],
    )


class ConnectForm(FlaskForm):
    label = StringField(
        "Label",
        description="A name for this chat on this site, e.g. “Ops alerts”.",
        validators=[DataRequired(), Length(max=64)],
        filters=[lambda value: value.strip() if value else value],
    )


class ConfirmForm(FlaskForm):
    """An empty form: a POST button that carries only the CSRF token."""
