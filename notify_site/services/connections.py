"""Connections: listing them, revoking and refreshing them at the Notify server, and the
states a connection goes through (active, revoked, unreachable) with their rate-limit
snapshot. Connecting a chat in the first place is :mod:`notify_site.services.connecting`.

A connection's access token is encrypted under the key ring, bound to its row
(:func:`connection_context`). No database transaction is held open during a call to the
Notify server.
"""

from __future__ import annotations

from flask_babel import gettext
from sqlalchemy import select

from notify_site.db_types import utcnow
from notify_site.extensions import db
from notify_site.keyring import keyring
from notify_site.models import Connection, ConnectionStatus, User
from notify_site.notify_client import (
    AuthError,
    NotifyError,
    RateLimit,
    RateLimitedError,
    TargetStatus,
)
from notify_site.services import ServiceError
from notify_site.services.notifications import fail_pending_notifications
from notify_site.services.notify_clients import notify_client
from notify_site.services.retry import CHAT_UNREACHABLE, CONNECTION_REVOKED
from notify_site.stored_text import StoredText, assign, columns, site_text

# A connection's status_detail: English (the API returns it), with a code pages translate.
DETAIL_NO_NAME = site_text("no_name")
DETAIL_REVOKED_HERE = site_text("revoked_here")
DETAIL_TOKEN_INVALID = site_text("token_invalid")


class ConnectionNotFoundError(ServiceError):
    """No such connection, or not this user's."""


class ConnectionActionError(ServiceError):
    """A revoke or refresh could not reach a usable answer from the Notify server."""


def connection_context(connection_id: int) -> str:
    """What a connection's token ciphertext is bound to (checked on every decrypt)."""
    return f"connection:{connection_id}"


def rate_limit_values(rate: RateLimit, call: str) -> dict:
    """The connection columns that hold a rate-limit snapshot, from one answer's headers."""
    return {
        "rate_limit": rate.limit,
        "rate_remaining": rate.remaining,
        "rate_image_limit": rate.image_limit,
        "rate_image_remaining": rate.image_remaining,
        "rate_reset_at": rate.reset_at,
        "rate_checked_at": utcnow(),
        "rate_checked_by": call,
        # The relay's extension headers (None from a plain Notify server: nothing is shown).
        "line_quota_limit": rate.monthly_limit,
        "line_quota_remaining": rate.monthly_remaining,
        "line_quota_reset_at": rate.monthly_reset_at,
    }


def apply_rate_limit(connection: Connection, rate: RateLimit, call: str) -> None:
    """Store one answer's rate-limit snapshot on ``connection`` (no commit)."""
    for name, value in rate_limit_values(rate, call).items():
        setattr(connection, name, value)


def apply_status(connection: Connection, status: TargetStatus) -> None:
    """A successful status answer: the chat's name and type, active, and the snapshot."""
    connection.target_name = status.target
    connection.target_type = status.target_type
    connection.status = ConnectionStatus.ACTIVE
    assign(connection, "status_detail", None if status.target else DETAIL_NO_NAME)
    apply_rate_limit(connection, status.rate_limit, "status")


def revocation_values(detail: StoredText) -> dict:
    """The connection columns of a revoked connection. A dead token is of no use to anyone:
    even its ciphertext is dropped."""
    return {
        "status": ConnectionStatus.REVOKED,
        **columns("status_detail", detail),
        "revoked_at": utcnow(),
        "token_ciphertext": "",
    }


def mark_revoked(connection: Connection, detail: StoredText) -> None:
    """Revoke ``connection`` and fail its queue (no commit)."""
    for name, value in revocation_values(detail).items():
        setattr(connection, name, value)
    if connection.id is not None:
        fail_pending_notifications(connection.id, CONNECTION_REVOKED)


def unreachable_values() -> dict:
    """The connection columns of an unreachable connection (the relay's 401 with ``"reason":
    "chat_unreachable"``). Unlike a revoked one it keeps its token: the chat may add the bot
    back, and a successful status call (Refresh) then makes the connection active again. The
    pages explain the state themselves, in the reader's language, so no detail is stored."""
    return {"status": ConnectionStatus.UNREACHABLE, **columns("status_detail", None)}


def mark_unreachable(connection: Connection) -> None:
    """Mark ``connection`` unreachable and fail its queue (no commit)."""
    for name, value in unreachable_values().items():
        setattr(connection, name, value)
    if connection.id is not None:
        fail_pending_notifications(connection.id, CHAT_UNREACHABLE)


def list_connections(user: User) -> list[Connection]:
    """The user's connections, active ones first, newest first within each group; not the
    revoked ones they removed from the list (:func:`remove_connection`)."""
    return list(
        db.session.scalars(
            select(Connection)
            .where(Connection.owner_id == user.id, Connection.removed_at.is_(None))
            .order_by((Connection.status == ConnectionStatus.REVOKED).asc(), Connection.id.desc())
        )
    )


def get_connection(user: User, connection_id: int) -> Connection:
    connection = db.session.get(Connection, connection_id)
    if connection is None or (connection.owner_id != user.id and not user.is_admin):
        raise ConnectionNotFoundError(gettext("No such connection."))
    return connection


def _own_connection(user: User, connection_id: int) -> Connection:
    connection = db.session.get(Connection, connection_id)
    if connection is None or connection.owner_id != user.id or connection.removed_at:
        raise ConnectionNotFoundError(gettext("No such connection."))
    return connection


def rename_connection(user: User, connection_id: int, label: str) -> Connection:
    """Give one of the user's own connections a new label (checked by the form: 1 to 64
    plain characters). Only its owner names it, an admin included."""
    connection = _own_connection(user, connection_id)
    connection.label = label
    db.session.commit()
    return connection


def remove_connection(user: User, connection_id: int) -> Connection:
    """Take a revoked connection off the lists; its notifications stay in the history. An
    active one must be disconnected first (:class:`ConnectionActionError`)."""
    connection = _own_connection(user, connection_id)
    if connection.status != ConnectionStatus.REVOKED:
        raise ConnectionActionError(
            gettext("Disconnect “%(label)s” before removing it.", label=connection.label)
        )
    connection.removed_at = connection.removed_at or utcnow()
    db.session.commit()
    return connection


def same_chat(connection: Connection) -> list[Connection]:
    """The owner's other live connections to the chat ``connection`` reaches (same name and
    type, as the Notify server reports them): sending to both sends twice."""
    if not connection.target_name:
        return []
    return list(
        db.session.scalars(
            select(Connection).where(
                Connection.owner_id == connection.owner_id,
                Connection.id != connection.id,
                Connection.status != ConnectionStatus.REVOKED,
                Connection.target_name == connection.target_name,
                Connection.target_type == connection.target_type,
            )
        )
    )


def token_of(connection: Connection) -> str:
    return keyring().decrypt(connection.token_ciphertext, context=connection_context(connection.id))


def revoke_connection(user: User, connection_id: int) -> Connection:
    """Revoke the token at the Notify server and mark the connection revoked.

    A 401 means the token is already dead: the connection is marked revoked all the same.
    """
    connection = get_connection(user, connection_id)
    if connection.status == ConnectionStatus.REVOKED:
        return connection
    token = token_of(connection)
    db.session.commit()
    try:
        notify_client().revoke(token)
    except AuthError:
        pass
    except NotifyError as error:
        raise ConnectionActionError(
            gettext(
                "Could not revoke “%(label)s”: %(reason)s. It is still connected; "
                "try again in a moment.",
                label=connection.label,
                reason=error.message,
            )
        ) from None
    mark_revoked(connection, DETAIL_REVOKED_HERE)
    db.session.commit()
    return connection


def refresh_connection(user: User, connection_id: int) -> Connection:
    """Ask the Notify server for the chat's status (this spends one call of the hourly quota).

    A successful answer makes the connection active, an unreachable one included (its chat
    came back); a 401 marks it revoked, or unreachable when the body says the chat is.
    """
    connection = get_connection(user, connection_id)
    if connection.status == ConnectionStatus.REVOKED:
        raise ConnectionActionError(
            gettext("“%(label)s” is revoked; connect the chat again.", label=connection.label)
        )
    token = token_of(connection)
    db.session.commit()
    try:
        status = notify_client().status(token)
    except AuthError as error:
        if error.chat_unreachable:
            mark_unreachable(connection)
            db.session.commit()
            raise ConnectionActionError(
                gettext(
                    "“%(label)s” cannot be reached: the chat blocked the bot or removed it from "
                    "the group. Once it is back, press Refresh.",
                    label=connection.label,
                )
            ) from None
        mark_revoked(connection, DETAIL_TOKEN_INVALID)
        db.session.commit()
        raise ConnectionActionError(
            gettext(
                "“%(label)s” was disconnected at the Notify server (the token is invalid).",
                label=connection.label,
            )
        ) from None
    except RateLimitedError as error:
        if error.rate_limit is not None:
            apply_rate_limit(connection, error.rate_limit, "status")
            db.session.commit()
        raise ConnectionActionError(
            gettext(
                "The hourly quota of “%(label)s” is spent; try after it resets.",
                label=connection.label,
            )
        ) from None
    except NotifyError as error:
        raise ConnectionActionError(
            gettext(
                "Could not refresh “%(label)s”: %(reason)s.",
                label=connection.label,
                reason=error.message,
            )
        ) from None
    apply_status(connection, status)
    db.session.commit()
    return connection
