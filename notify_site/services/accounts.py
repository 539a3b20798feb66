"""Accounts: registration, sign-in, sessions, passwords, the admins' controls, deletion.

**Sessions.** The session is a signed cookie: the server keeps no copy, so on its own a copied
cookie would work until it expires, signed out or not. Flask-Login therefore keeps
``User.get_id()`` in it, ``"<id>:<session epoch>"``, and :func:`load_user` accepts it only
while that epoch is still the account's and the account is enabled. :func:`end_sessions` draws
a new epoch, which ends every session signed in before it, copies included. Sign-out,
a password change, ``set-password`` and disabling do this. Sign-out therefore ends the
account's sessions on every device, not only this one: a signed cookie cannot be told apart
from a copy of itself, and only a server-side record per session could end one alone.

**Admins.** An admin may disable and enable accounts, make them admins and remove that right,
never disable their own account, and never leave the site without an enabled admin. The check
locks the enabled admins' rows (``FOR UPDATE`` on PostgreSQL; SQLite has one writer anyway), so
two admins demoting each other at once cannot both succeed.

**The audit.** Each of those changes, password changes and deletions
(services/account_deletion.py) is an :class:`~notify_site.models.AccountEvent`, which outlives
the account.

Past 400 lines on purpose: one idea, the account's life (its sessions, password and
standing are checked together on every request); splitting them would scatter one rule set.
"""

from __future__ import annotations

import functools
import hmac
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from flask import current_app
from flask_babel import gettext
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from werkzeug.security import check_password_hash, generate_password_hash

from notify_site.db_types import utcnow
from notify_site.extensions import db
from notify_site.models import (
    AccountAction,
    AccountEvent,
    ApiKey,
    Connection,
    ConnectionStatus,
    User,
    new_session_epoch,
)
from notify_site.services import ServiceError, plain_text_reason
from notify_site.services.paging import Page, count_rows, page_offset

PASSWORD_MIN_CHARS = 8
PASSWORD_MAX_CHARS = 200
USERS_PER_PAGE = 50
EVENTS_SHOWN = 20


class RegistrationClosedError(ServiceError):
    pass


class UsernameTakenError(ServiceError):
    pass


class InvalidUsernameError(ServiceError):
    """A name no account may have (control characters; the form allows far fewer)."""


class AccountDisabledError(ServiceError):
    """The account is disabled: no sign-in, no API key."""


class WrongPasswordError(ServiceError):
    """The current password given to confirm a change is not the account's."""


class PasswordRuleError(ServiceError):
    """A new password too short or too long."""


class UnknownUserError(ServiceError):
    """No account has that name or id."""


class AdminRuleError(ServiceError):
    """An admin action that would disable yourself or leave the site without an admin."""


# ---------------------------------------------------------------------- sessions and sign-in


def load_user(session_id: str) -> User | None:
    """Flask-Login's user loader: the account of a ``"<id>:<epoch>"`` session id.

    None (signed out) when the epoch is no longer the account's or the account is disabled.
    """
    user_id, separator, epoch = session_id.partition(":")
    if not separator or not user_id.isdigit() or not epoch:
        return None
    user = db.session.get(User, int(user_id))
    if user is None or not user.is_active:
        return None
    if not hmac.compare_digest(user.session_epoch.encode(), epoch.encode()):
        return None
    return user


def is_admin(user_id: int) -> bool:
    """Whether the account ``user_id`` is an enabled admin (False for an unknown id)."""
    user = db.session.get(User, user_id)
    return user is not None and user.is_admin and user.is_active


def usernames(user_ids: Iterable[int]) -> dict[int, str]:
    """The usernames of the accounts with these ids (unknown ids are left out)."""
    ids = list(user_ids)
    if not ids:
        return {}
    rows = db.session.execute(select(User.id, User.username).where(User.id.in_(ids)))
    return {row.id: row.username for row in rows}


def end_sessions(user: User) -> None:
    """End every session of ``user`` signed in so far (a new epoch; the caller commits)."""
    user.session_epoch = new_session_epoch()


def sign_out(user: User) -> None:
    """End the account's sessions: this browser's and every other, copies included."""
    end_sessions(user)
    db.session.commit()


def authenticate(username: str, password: str) -> User | None:
    """The user whose name and password match, else None (in constant-ish time).

    Raises :class:`AccountDisabledError` for the right password of a disabled account: only
    someone who knows the password learns that the account is disabled.
    """
    user = db.session.scalar(select(User).where(User.username == username.strip()))
    if user is None or user.password_hash is None:
        # No such account, or one that signs in only with LINE: the same cost and answer.
        check_password_hash(_dummy_hash(current_app.config["PASSWORD_HASH_METHOD"]), password)
        return None
    if not check_password_hash(user.password_hash, password):
        return None
    if not user.is_active:
        raise AccountDisabledError(gettext("This account is disabled. Ask your admin."))
    return user


# ----------------------------------------------------------------------- accounts, passwords


def hash_password(password: str) -> str:
    """A salted hash of ``password`` by the configured ``PASSWORD_HASH_METHOD`` (scrypt)."""
    return generate_password_hash(password, method=current_app.config["PASSWORD_HASH_METHOD"])


@functools.cache
def _dummy_hash(method: str) -> str:
    """A hash of a random password, checked when the user does not exist, so that a missing
    user costs as much time as a wrong password and the answer does not reveal which it was.
    Made once per method, when first needed (not at import: each hash costs ~0.2 s)."""
    return generate_password_hash("not-a-real-password-4f1b", method=method)


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
        password_hash=hash_password(password),
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


def _check_new_password(password: str) -> None:
    if not PASSWORD_MIN_CHARS <= len(password) <= PASSWORD_MAX_CHARS:
        raise PasswordRuleError(
            gettext(
                "A password has %(min)s to %(max)s characters.",
                min=PASSWORD_MIN_CHARS,
                max=PASSWORD_MAX_CHARS,
            )
        )


def record_event(action: str, user: User, actor: User | None, **detail: int) -> None:
    """Add an audit entry (the caller commits). ``actor`` None: the command line."""
    db.session.add(
        AccountEvent(
            action=action,
            user_id=user.id,
            username=user.username,
            actor_id=actor.id if actor else None,
            actor_username=actor.username if actor else None,
            detail=json.dumps(detail, sort_keys=True) if detail else None,
        )
    )


def change_password(user: User, current: str, new: str) -> None:
    """Set a new password, given the current one; ends every session of the account.

    The caller signs this browser in again (with the new epoch) so that it stays signed in.
    Raises :class:`WrongPasswordError` or :class:`PasswordRuleError`.
    """
    if user.password_hash is not None and not check_password_hash(user.password_hash, current):
        # An account made by signing in with LINE has no password yet: it sets its first
        # one without a current one (it is signed in, with LINE).
        raise WrongPasswordError(gettext("That is not your current password."))
    _check_new_password(new)
    user.password_hash = hash_password(new)
    end_sessions(user)
    record_event(AccountAction.PASSWORD_CHANGED, user, user)
    db.session.commit()


def set_password(username: str, password: str) -> User:
    """An admin's reset from the command line: a new password, every session ended.

    Raises :class:`UnknownUserError` or :class:`PasswordRuleError`.
    """
    user = db.session.scalar(select(User).where(User.username == username.strip()))
    if user is None:
        raise UnknownUserError(gettext("There is no account called “%(name)s”.", name=username))
    _check_new_password(password)
    user.password_hash = hash_password(password)
    end_sessions(user)
    record_event(AccountAction.PASSWORD_SET, user, None)
    db.session.commit()
    return user


# ------------------------------------------------------------------------ the admins' controls


@dataclass(frozen=True)
class AccountRow:
    """An account as the admins' list shows it."""

    id: int
    username: str
    is_admin: bool
    disabled_at: datetime | None
    created_at: datetime
    connections: int
    api_keys: int


@dataclass(frozen=True)
class EventRow:
    """An audit entry as the admins' list shows it: ``detail`` decoded."""

    event: AccountEvent
    detail: dict[str, int]


def list_users(*, search: str | None = None, page: int = 1) -> Page[AccountRow]:
    """One page of accounts, by name (the username index), optionally those whose name
    contains ``search``; with each account's active connections and API keys counted."""
    query = select(User.id)
    if search:
        query = query.where(
            func.lower(User.username).contains(search.lower().strip(), autoescape=True)
        )
    total = count_rows(query)
    connections = (
        select(func.count(Connection.id))
        .where(Connection.owner_id == User.id, Connection.status != ConnectionStatus.REVOKED)
        .correlate(User)
        .scalar_subquery()
    )
    keys = (
        select(func.count(ApiKey.id))
        .where(ApiKey.owner_id == User.id, ApiKey.revoked_at.is_(None))
        .correlate(User)
        .scalar_subquery()
    )
    rows = db.session.execute(
        select(User, connections, keys)
        .where(User.id.in_(query))
        .order_by(User.username)
        .limit(USERS_PER_PAGE)
        .offset(page_offset(page, USERS_PER_PAGE))
    )
    items = [
        AccountRow(
            id=user.id,
            username=user.username,
            is_admin=user.is_admin,
            disabled_at=user.disabled_at,
            created_at=user.created_at,
            connections=connection_count,
            api_keys=key_count,
        )
        for user, connection_count, key_count in rows
    ]
    return Page(items=items, page=page, per_page=USERS_PER_PAGE, total=total)


def recent_events(limit: int = EVENTS_SHOWN) -> list[EventRow]:
    """The newest audit entries first."""
    events = db.session.scalars(
        select(AccountEvent)
        .order_by(AccountEvent.created_at.desc(), AccountEvent.id.desc())
        .limit(limit)
    )
    return [EventRow(event, json.loads(event.detail) if event.detail else {}) for event in events]


def _account(user_id: int) -> User:
    user = db.session.get(User, user_id)
    if user is None:
        raise UnknownUserError(gettext("No such account."))
    return user


def _other_enabled_admins(user: User) -> int:
    """How many enabled admins there are besides ``user``, their rows locked until commit."""
    admins = db.session.scalars(
        select(User.id).where(User.is_admin.is_(True), User.disabled_at.is_(None)).with_for_update()
    ).all()
    return sum(1 for admin_id in admins if admin_id != user.id)


def keep_an_admin(user: User, message: str) -> None:
    """Raise :class:`AdminRuleError` (``message``) if ``user`` is the last enabled admin."""
    if user.is_admin and user.is_active and _other_enabled_admins(user) == 0:
        db.session.rollback()
        raise AdminRuleError(message)


def set_disabled(admin: User, user_id: int, disabled: bool) -> User:
    """Disable (ending its sessions) or enable an account. Doing it twice changes nothing.

    Raises :class:`UnknownUserError`, or :class:`AdminRuleError` for your own account or the
    last enabled admin.
    """
    user = _account(user_id)
    if disabled == (user.disabled_at is not None):
        return user
    if disabled:
        if user.id == admin.id:
            raise AdminRuleError(gettext("You cannot disable your own account."))
        keep_an_admin(
            user, gettext("“%(name)s” is the only enabled admin left.", name=user.username)
        )
        user.disabled_at = utcnow()
        end_sessions(user)
        record_event(AccountAction.DISABLED, user, admin)
    else:
        user.disabled_at = None
        record_event(AccountAction.ENABLED, user, admin)
    db.session.commit()
    return user


def set_admin(admin: User, user_id: int, make_admin: bool) -> User:
    """Give an account the admin's rights or take them away (never from the last admin).

    Raises :class:`UnknownUserError` or :class:`AdminRuleError`.
    """
    user = _account(user_id)
    if make_admin == user.is_admin:
        return user
    if not make_admin:
        keep_an_admin(
            user,
            gettext(
                "“%(name)s” is the only enabled admin left: make another account an admin first.",
                name=user.username,
            ),
        )
    user.is_admin = make_admin
    record_event(
        AccountAction.MADE_ADMIN if make_admin else AccountAction.ADMIN_REMOVED, user, admin
    )
    db.session.commit()
    return user
