"""Deleting an account (``/settings/delete-account``).

:func:`delete_account` disconnects every chat at the Notify server first, through the revoke
service (a token left alive there could not be revoked by anyone afterwards), then deletes the
account's rows in one transaction: connections, notifications and their delivery attempts and
uploaded images, API keys and their idempotency records, incoming webhooks and their history,
pending connect flows, keys waiting to be shown; and, through the account-deletion seam,
whatever the relay keeps of the person (their sandbox chats and inbox, tokens, pairings). What
stays is the admins' audit
(services/accounts.py): one entry with the account's id and name, when it was deleted, and
how many connections, notifications and API keys went with it; its earlier entries
(disabled, password changed, ...) stay too.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app
from flask_babel import gettext
from sqlalchemy import delete, func, or_, select
from werkzeug.security import check_password_hash

from notify_site import seams
from notify_site.extensions import db
from notify_site.models import (
    AccountAction,
    ApiKey,
    ApiKeyReveal,
    Connection,
    ConnectionStatus,
    DeliveryAttempt,
    IdempotencyRecord,
    Notification,
    NotificationImage,
    OAuthState,
    User,
    Webhook,
)
from notify_site.services import ServiceError
from notify_site.services.accounts import WrongPasswordError, keep_an_admin, record_event
from notify_site.services.connections import ConnectionActionError, revoke_connection
from notify_site.services.webhooks import manage as webhooks


class AccountDeletionError(ServiceError):
    """A chat could not be disconnected at the Notify server, so nothing was deleted."""


@dataclass(frozen=True)
class DeletionPreview:
    """What deleting an account would take with it, for its confirmation page."""

    connections: int  # still connected: each is disconnected at the Notify server
    api_keys: int  # not revoked
    notifications: int


def deletion_preview(user: User) -> DeletionPreview:
    def count(query) -> int:
        return db.session.scalar(select(func.count()).select_from(query.subquery())) or 0

    return DeletionPreview(
        connections=count(
            select(Connection.id).where(
                Connection.owner_id == user.id, Connection.status != ConnectionStatus.REVOKED
            )
        ),
        api_keys=count(
            select(ApiKey.id).where(ApiKey.owner_id == user.id, ApiKey.revoked_at.is_(None))
        ),
        notifications=count(select(Notification.id).where(Notification.owner_id == user.id)),
    )


def delete_account(user: User, password: str) -> None:
    """Delete the account of ``user``, who confirmed with their password.

    Every chat is disconnected at the Notify server first (through the revoke service); if one
    cannot be, nothing is deleted and :class:`AccountDeletionError` says which (the chats
    disconnected so far stay disconnected). Then every row of the account goes in one
    transaction, and one audit entry stays. Raises :class:`WrongPasswordError`, or
    :class:`AdminRuleError` when the account is the last enabled admin of a site with other
    accounts.
    """
    if user.password_hash is None:
        raise WrongPasswordError(
            gettext("Your account has no password yet: set one in Settings, then confirm with it.")
        )
    if not check_password_hash(user.password_hash, password):
        raise WrongPasswordError(gettext("That is not your password."))
    last_admin = gettext(
        "You are the only admin: make another account an admin before deleting yours."
    )
    _check_not_last_admin(user, last_admin)
    for connection_id in db.session.scalars(
        select(Connection.id).where(
            Connection.owner_id == user.id, Connection.status != ConnectionStatus.REVOKED
        )
    ).all():
        try:
            revoke_connection(user, connection_id)
        except ConnectionActionError as error:
            raise AccountDeletionError(
                gettext("Your account is not deleted. %(reason)s", reason=str(error))
            ) from None
    _check_not_last_admin(user, last_admin)
    counts = _delete_rows(user.id)
    for forget in seams.items(current_app, seams.ACCOUNT_DELETED):
        forget(user.id)  # the relay's rows of the person, in this transaction
    record_event(AccountAction.DELETED, user, user, **counts)
    db.session.execute(delete(User).where(User.id == user.id))
    db.session.commit()


def _check_not_last_admin(user: User, message: str) -> None:
    """The last enabled admin may delete their account only when it is the site's last one."""
    others = db.session.scalar(select(func.count()).select_from(User).where(User.id != user.id))
    if others:
        keep_an_admin(user, message)


def _delete_rows(user_id: int) -> dict[str, int]:
    """Delete everything of the account but its ``users`` row (no commit); what went, counted.

    Explicit rather than left to the foreign keys' cascades, so the counts are known and an
    uploaded image (``SET NULL``, not cascaded) goes with its notifications. Notifications to
    the account's chats go too, even those an admin's key sent.
    """
    own_connections = select(Connection.id).where(Connection.owner_id == user_id)
    notifications = select(Notification.id).where(
        or_(Notification.owner_id == user_id, Notification.connection_id.in_(own_connections))
    )
    image_ids = set(
        db.session.scalars(
            select(Notification.image_id).where(
                Notification.id.in_(notifications), Notification.image_id.is_not(None)
            )
        )
    )
    own_keys = select(ApiKey.id).where(ApiKey.owner_id == user_id)
    counts = {
        "connections": db.session.scalar(
            select(func.count()).select_from(own_connections.subquery())
        ),
        "api_keys": db.session.scalar(select(func.count()).select_from(own_keys.subquery())),
    }

    def remove(statement):
        # No ORM bookkeeping: a large account's notification ids are not fetched into memory.
        return db.session.execute(statement.execution_options(synchronize_session=False))

    remove(delete(DeliveryAttempt).where(DeliveryAttempt.notification_id.in_(notifications)))
    remove(delete(IdempotencyRecord).where(IdempotencyRecord.api_key_id.in_(own_keys)))
    counts["notifications"] = remove(
        delete(Notification).where(Notification.id.in_(notifications))
    ).rowcount
    if image_ids:
        still_used = select(Notification.image_id).where(Notification.image_id.in_(image_ids))
        remove(
            delete(NotificationImage).where(
                NotificationImage.id.in_(image_ids), NotificationImage.id.not_in(still_used)
            )
        )
    webhooks.delete_rows(select(Webhook.id).where(Webhook.owner_id == user_id))
    for model, column in (
        (ApiKeyReveal, ApiKeyReveal.user_id),
        (ApiKey, ApiKey.owner_id),
        (OAuthState, OAuthState.user_id),
        (Connection, Connection.owner_id),
    ):
        remove(delete(model).where(column == user_id))
    return counts
