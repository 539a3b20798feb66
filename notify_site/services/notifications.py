"""Queueing notifications: validation, scoping, and the write to the outbox.

A request only validates, writes the notification rows (one per target connection) and
commits; the workers (:mod:`notify_site.worker`) call the Notify API later. Once
:func:`queue_notifications` returns, the rows are on disk: a crash loses nothing.

What may be sent is checked before it gets here, by :mod:`notify_site.notify_content`, the
rules the relay checks with too: the services take its checked :class:`Content`, and
:func:`describe_problem` words its reasons for people.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from flask_babel import format_decimal, gettext
from sqlalchemy import and_, bindparam, insert, or_, select, update

from notify_site.db_types import utcnow
from notify_site.extensions import db
from notify_site.i18n import status_word
from notify_site.models import (
    ApiKey,
    Connection,
    ConnectionStatus,
    Notification,
    NotificationImage,
    NotificationStatus,
    User,
)
from notify_site.notify_content import Content, Problem
from notify_site.services import ServiceError
from notify_site.stored_text import StoredText, columns

if TYPE_CHECKING:
    from notify_site.services.api_keys import AuthenticatedKey


class NotificationValidationError(ServiceError):
    """Bad input; ``fields`` maps each field to what is wrong with it."""

    def __init__(self, fields: dict[str, str]) -> None:
        super().__init__("; ".join(f"{name}: {reason}" for name, reason in fields.items()))
        self.fields = fields


class UnknownConnectionError(ServiceError):
    """A target connection does not exist or is not the caller's."""


class InactiveConnectionError(ServiceError):
    """A target connection is revoked, unreachable or in error."""


class NotificationNotFoundError(ServiceError):
    pass


def N_(text: str) -> str:  # noqa: N802 - the conventional name of gettext's no-op marker
    """Mark a reason for extraction; :func:`describe_problem` translates it when shown."""
    return text


# How the site words notify_content's reason codes (translated when shown). The reasons are
# fragments ("is required") that the send form puts after the field's name in English; in
# other languages they read on their own. The relay words the same codes in English itself.
_REASONS = {
    "required": N_("is required"),
    "empty": N_("is required"),
    "too_long": N_("at most %(max)s characters (this one has %(count)s)"),
    "control_character": N_("must not contain control characters (found %(character)s)"),
    "invalid_unicode": N_("must be valid Unicode (found %(character)s)"),
    "positive_integer": N_("must be a positive whole number"),
    "url_too_long": N_("at most %(max)s characters"),
    "url_characters": N_("must be an address without spaces or control characters"),
    "url_invalid": N_("must be a valid address"),
    "url_https": N_("must be an https:// URL"),
    "url_host": N_("must be an https:// URL"),
    "boolean": N_("must be true or false"),
    "not_a_file": N_("must be a file part of a multipart/form-data body"),
    "file_empty": N_("the file is empty"),
    "file_too_large": N_("must be at most %(mib)s MiB"),
    "file_type": N_("must be a PNG or JPEG image"),
    "type_mismatch": N_("is declared as %(declared)s but the file is %(actual)s"),
    "unreadable": N_("could not be read as a PNG or JPEG image"),
    "dimensions": N_("must be at most %(max)s×%(max)s pixels (this one is %(width)s×%(height)s)"),
    "too_many_pixels": N_("must be at most %(max)s×%(max)s pixels"),
}
_PAIR_REASONS = {
    "sticker": N_("give both the package id and the sticker id, or neither"),
    "image": N_("give both the thumbnail URL and the full-size URL, or neither"),
}
# The pair each field of a pair belongs to.
PAIR_OF = {
    "sticker_package_id": "sticker",
    "sticker_id": "sticker",
    "image_thumbnail_url": "image",
    "image_fullsize_url": "image",
}


def describe_problem(field_name: str, problem: Problem) -> str:
    """One of notify_content's problems, worded for people in the request's language."""
    if problem.code == "pair":
        return gettext(_PAIR_REASONS[PAIR_OF[field_name]])
    params = dict(problem.params)
    if problem.code == "file_too_large":
        params["mib"] = format_decimal(params["max"] / (1024 * 1024), format="#,##0.#")
    return gettext(_REASONS[problem.code], **params)


class Sender(Protocol):
    """Who queues: a signed-in :class:`User`, or the owner of an API key.

    Only who it is and whether it is an admin matter, so the API can pass what it read with
    the key (:class:`~notify_site.services.api_keys.KeyOwner`) instead of loading the user.
    """

    @property
    def id(self) -> int: ...

    @property
    def is_admin(self) -> bool: ...


@dataclass(frozen=True)
class ResolvedConnection:
    """A connection as queueing needs it: which one, whose, its label and its status.

    Plain values read in one query (no ORM object: loading one cost more than the query), so
    they also stay readable after a commit.
    """

    id: int
    owner_id: int
    label: str
    status: str


@dataclass(frozen=True)
class QueuedNotification:
    """A notification just queued: the new row's id and the connection it goes to."""

    id: int
    connection: ResolvedConnection
    status: str = NotificationStatus.QUEUED


# Ids are 32-bit wherever we store them: a longer number cannot be an id, only a label.
CONNECTION_ID_MAX = 2**31 - 1

_connections = Connection.__table__
_RESOLVED_COLUMNS = (
    _connections.c.id,
    _connections.c.owner_id,
    _connections.c.label,
    _connections.c.status,
)
# The candidates for the refs, in one query: the rows with one of the ids (whose they are is
# checked afterwards) and the caller's own rows with one of the labels. Built once: building a
# statement costs more than running it. One ref (the usual request) has a statement of its own
# with plain parameters, which SQLAlchemy need not expand into a list at every execution; a
# NULL id or label matches nothing.
_CONNECTION_BY_REF = select(*_RESOLVED_COLUMNS).where(
    or_(
        _connections.c.id == bindparam("id"),
        and_(
            _connections.c.owner_id == bindparam("owner_id"),
            _connections.c.label == bindparam("label"),
        ),
    )
)
_CONNECTIONS_BY_REFS = select(*_RESOLVED_COLUMNS).where(
    or_(
        _connections.c.id.in_(bindparam("ids", expanding=True)),
        and_(
            _connections.c.owner_id == bindparam("owner_id"),
            _connections.c.label.in_(bindparam("labels", expanding=True)),
        ),
    )
)


def find_connections(user: Sender, refs: list[int | str]) -> list[ResolvedConnection]:
    """The caller's connections named by id or label, in the order given, without repeats.

    An admin may name any connection by id; labels are looked up among the caller's own. A
    string of digits is an id first, then a label. When several of the caller's connections
    share a label, the active one wins, then the newest. One query, whatever the refs.
    """
    ids = {ref_id for ref in refs if (ref_id := _ref_id(ref)) is not None}
    labels = {ref for ref in refs if isinstance(ref, str)}
    if len(refs) == 1:
        (ref,) = refs
        statement = _CONNECTION_BY_REF
        parameters = {
            "id": _ref_id(ref),
            "owner_id": user.id,
            "label": ref if isinstance(ref, str) else None,
        }
    else:
        statement = _CONNECTIONS_BY_REFS
        parameters = {"ids": list(ids), "owner_id": user.id, "labels": list(labels)}
    candidates = [ResolvedConnection(*row) for row in db.session.execute(statement, parameters)]
    by_id = {
        c.id: c for c in candidates if c.id in ids and (user.is_admin or c.owner_id == user.id)
    }
    by_label: dict[str, ResolvedConnection] = {}
    for connection in sorted(candidates, key=_label_preference):
        if connection.owner_id == user.id and connection.label in labels:
            by_label[connection.label] = connection  # the most preferred comes last

    found: dict[int, ResolvedConnection] = {}
    for ref in refs:
        connection = by_id.get(_ref_id(ref))
        if connection is None and isinstance(ref, str):
            connection = by_label.get(ref)
        if connection is None:
            raise UnknownConnectionError(gettext("no connection %(ref)s", ref=repr(ref)))
        if connection.status == ConnectionStatus.UNREACHABLE:
            raise InactiveConnectionError(
                gettext(
                    "connection %(label)s is unreachable: the chat blocked the bot or removed it "
                    "from the group. Once it is back, press Refresh.",
                    label=repr(connection.label),
                )
            )
        if connection.status != ConnectionStatus.ACTIVE:
            raise InactiveConnectionError(
                gettext(
                    "connection %(label)s is %(status)s; connect it again",
                    label=repr(connection.label),
                    status=status_word(connection.status),
                )
            )
        found.setdefault(connection.id, connection)
    return list(found.values())


def _ref_id(ref: int | str) -> int | None:
    """The id a ref names, if it can name one."""
    if isinstance(ref, str):
        if not ref.isdecimal():  # what int() reads; isdigit() would let "²" through
            return None
        ref = int(ref)
    return ref if 0 < ref <= CONNECTION_ID_MAX else None


def _label_preference(connection: ResolvedConnection) -> tuple[bool, int]:
    return connection.status == ConnectionStatus.ACTIVE, connection.id


_notifications = Notification.__table__
_images = NotificationImage.__table__
# Core inserts: the ORM's unit of work (objects, flush, identity map) costs more than the
# write itself. RETURNING gives the new ids, in the order of the parameter rows.
_INSERT_NOTIFICATIONS = insert(_notifications).returning(
    _notifications.c.id, sort_by_parameter_order=True
)
_INSERT_IMAGE = insert(_images).returning(_images.c.id)


def add_notifications(
    user: Sender,
    connections: list[Connection] | list[ResolvedConnection],
    content: Content,
    *,
    api_key: ApiKey | AuthenticatedKey | None = None,
) -> list[QueuedNotification]:
    """Insert one queued row per connection in the session's transaction, without committing.

    The caller commits (see :func:`queue_notifications`), so that other writes, such as an
    idempotency record, can share the transaction; a rollback of the session undoes the rows.
    Returns what was queued, one record per connection, in order.
    """
    if not isinstance(content, Content):
        raise TypeError("add_notifications takes a Content checked by notify_content")
    if not connections:
        raise NotificationValidationError({"connections": "choose at least one connection"})
    image_id = None
    if content.image_file is not None:
        image_id = db.session.execute(
            _INSERT_IMAGE,
            {
                "filename": content.image_file.filename[:200] or "image",
                "content_type": content.image_file.content_type,
                "data": content.image_file.data,
            },
        ).scalar_one()
    api_key_id = api_key.id if api_key else None
    ids = db.session.execute(
        _INSERT_NOTIFICATIONS,
        [
            {
                "owner_id": connection.owner_id,
                "connection_id": connection.id,
                "api_key_id": api_key_id,
                "message": content.message,
                "sticker_package_id": content.sticker_package_id,
                "sticker_id": content.sticker_id,
                "image_thumbnail_url": content.image_thumbnail_url,
                "image_fullsize_url": content.image_fullsize_url,
                "image_id": image_id,
                "notification_disabled": content.notification_disabled,
                "status": NotificationStatus.QUEUED,
            }
            for connection in connections
        ],
    ).scalars()
    return [
        QueuedNotification(id=row_id, connection=_resolved(connection))
        for row_id, connection in zip(ids, connections, strict=True)
    ]


def _resolved(connection: Connection | ResolvedConnection) -> ResolvedConnection:
    if isinstance(connection, ResolvedConnection):
        return connection
    return ResolvedConnection(
        connection.id, connection.owner_id, connection.label, connection.status
    )


def queue_notifications(
    user: Sender,
    connections: list[Connection] | list[ResolvedConnection],
    content: Content,
    *,
    api_key: ApiKey | AuthenticatedKey | None = None,
) -> list[QueuedNotification]:
    """Validate and durably queue one notification per connection (commits)."""
    try:
        rows = add_notifications(user, connections, content, api_key=api_key)
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    return rows


def get_notification(user: User, notification_id: int) -> Notification:
    notification = db.session.get(Notification, notification_id)
    if notification is None or (notification.owner_id != user.id and not user.is_admin):
        raise NotificationNotFoundError(gettext("no notification %(id)s", id=notification_id))
    return notification


def get_notifications(user: User, ids: list[int]) -> list[Notification]:
    """Several of the user's notifications at once (unknown ids are left out)."""
    query = select(Notification).where(Notification.id.in_(ids))
    if not user.is_admin:
        query = query.where(Notification.owner_id == user.id)
    return list(db.session.scalars(query.order_by(Notification.id)))


def active_connections(user: User) -> list[Connection]:
    return list(
        db.session.scalars(
            select(Connection)
            .where(
                Connection.owner_id == user.id,
                Connection.status == ConnectionStatus.ACTIVE,
            )
            .order_by(Connection.label)
        )
    )


def fail_pending_notifications(connection_id: int, reason: StoredText) -> int:
    """Fail every queued or in-flight notification of a connection (no commit).

    Used when the connection dies (revoked here, or a 401 from the Notify server): its backlog
    can never be delivered, and saying so at once is better than retrying for a day.
    """
    now = utcnow()
    result = db.session.execute(
        update(Notification)
        .where(
            Notification.connection_id == connection_id,
            Notification.status.in_(NotificationStatus.PENDING),
        )
        .values(
            status=NotificationStatus.FAILED,
            **columns("last_error", reason),
            finished_at=now,
            updated_at=now,
            lease_token=None,
            lease_expires_at=None,
        )
        .execution_options(synchronize_session=False)
    )
    return result.rowcount
