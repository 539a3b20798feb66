"""Accounts: registration, sign-in checks, admin creation."""

from __future__ import annotations

from flask import current_app
from flask_babel import gettext
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from werkzeug.security import check_password_hash, generate_password_hash

from notify_site.extensions import db
from notify_site.models import User
from notify_site.services import ServiceError, plain_text_reason

# A hash of a random password, checked when the user does not exist, so that a missing user
# costs as much time as a wrong password and the answer does not reveal which it was.
_DUMMY_HASH = generate_password_hash("not-a-real-password-4f1b")


class RegistrationClosedError(ServiceError):
    pass


class UsernameTakenError(ServiceError):
    pass


class InvalidUsernameError(ServiceError):
    """A name no account may have (control characters; the form allows far fewer)."""


def load_user(user_id: str) -> User | None:
    """Flask-Login's user loader."""
    try:
        return db.session.get(User, int(user_id))
    except ValueError:
        return None


def create_user(username: str, password: str, *, admin: bool | None = None) -> User:
    """Create an account. The first account is always an admin; ``admin=True`` forces it.

    Raises :class:`UsernameTakenError` when the name is in use.
    """
    username = username.strip()
    reason = plain_text_reason(username)
    if reason:
        raise InvalidUsernameError(reason)
    is_first = db.session.scalar(select(func.count()).select_from(User)) == 0
    user = User(
        username=username,
        password_hash=generate_password_hash(password),
        is_admin=bool(admin) or is_first,
    )
    db.session.add(user)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise UsernameTakenError(
            gettext("The name “%(name)s” is already taken.", name=username)
        ) from None
    return user


def register(username: str, password: str) -> User:
    """Self-service registration, refused when ``REGISTRATION_OPEN`` is false."""
    if not current_app.config["REGISTRATION_OPEN"]:
        raise RegistrationClosedError(gettext("Registration is closed on this site."))
    return create_user(username, password)


def authenticate(username: str, password: str) -> User | None:
    """The user whose name and password match, else None (in constant-ish time)."""
    user = db.session.scalar(select(User).where(User.username == username.strip()))
    if user is None:
        check_password_hash(_DUMMY_HASH, password)
        return None
    if not check_password_hash(user.password_hash, password):
        return None
    return user
