"""The fast accept's statements (services/fast_accept.py), built once per process.

- :data:`LOOKUP`: the key, its state and its owner's, and the candidate connections — the
  general path's two reads (``api_keys.authenticate``, ``sending.find_targets``) in one;
- :func:`lookup_and_insert`: PostgreSQL's whole accept of a request without an
  ``Idempotency-Key`` — the key, the target and the row, in one statement;
- :func:`keyed_insert`: PostgreSQL's write of a request with an ``Idempotency-Key`` — the
  claim with its answer already in it and the row, in one statement;
- :func:`receipt_around_id`: the answer that statement stores, split around the row's id
  (of :func:`queued`, the row as a receipt names it).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    Integer,
    String,
    and_,
    bindparam,
    case,
    cast,
    exists,
    insert,
    literal_column,
    or_,
    select,
    true,
)

from notify_site.db_types import UTCDateTime
from notify_site.models import ApiKey, ConnectionStatus, IdempotencyRecord, User
from notify_site.models import Connection as ConnectionRow
from notify_site.models import Notification as NotificationRow
from notify_site.on_conflict import insert_for
from notify_site.services.notifications import ConnectionRef, QueuedNotification, ResolvedConnection
from notify_site.services.sending import ACCEPTED, receipt

_keys = ApiKey.__table__
_users = User.__table__
_connections = ConnectionRow.__table__
# The key, its state and its owner's, and the candidate connections: the general path's two
# reads (api_keys.authenticate, sending.find_targets) in one. Whether the key's last use is
# recent enough not to be recorded is decided here too, so no time comes back to be converted.
LOOKUP = (
    select(
        _keys.c.id,
        _keys.c.key_hash,
        _keys.c.revoked_at.is_(None),
        _keys.c.last_used_at >= bindparam("fresh_after", type_=UTCDateTime()),
        _keys.c.owner_id,
        _users.c.is_admin,
        _users.c.disabled_at.is_(None),
        _connections.c.id,
        _connections.c.owner_id,
        _connections.c.label,
        _connections.c.status,
    )
    .select_from(
        _keys.join(_users, _users.c.id == _keys.c.owner_id).join(
            _connections,
            or_(
                _connections.c.id == bindparam("id"),
                and_(
                    _connections.c.owner_id == _keys.c.owner_id,
                    _connections.c.label == bindparam("label"),
                ),
            ),
        )
    )
    .where(_keys.c.key_hash == bindparam("key_hash"))
)


# Constants written into the statement, not bound: a generic plan then knows them.
_ZERO = literal_column("0", Integer())
_ONE = literal_column("1", Integer())
_ACTIVE = literal_column(f"'{ConnectionStatus.ACTIVE}'", String())


def lookup_and_insert(value_keys: list[str]) -> Any:
    """PostgreSQL: the accept of a request without an ``Idempotency-Key`` in one statement —
    the key, the connection it names and the row — given the row's own values
    (``value_keys``: :func:`~notify_site.services.notifications.queued_values`' keys) and the
    read's (``key_hash``, ``fresh_after``, ``id``, ``label``); the row's id and its
    connection's id and label come back, or nothing when this is not the plain case.

    The rules are :data:`LOOKUP`'s and :func:`~notify_site.services.sending.pick_targets`'
    for one ref, written in SQL: an active key of an enabled owner, its last use recent
    enough not to be recorded; the connection named by id (any one through an admin's key,
    else the owner's) before one named by label (the owner's, an active one before an
    inactive one, then the newest), and only an active one is sent to. Anything else inserts
    nothing, and the general path answers it (tests/unit/test_fast_accept.py compares the
    two paths' answers and rows on PostgreSQL).
    """
    key = (
        select(_keys.c.id.label("api_key_id"), _keys.c.owner_id, _users.c.is_admin)
        .select_from(_keys.join(_users, _users.c.id == _keys.c.owner_id))
        .where(
            _keys.c.key_hash == bindparam("key_hash"),
            _keys.c.revoked_at.is_(None),
            _keys.c.last_used_at >= bindparam("fresh_after", type_=UTCDateTime()),
            _users.c.disabled_at.is_(None),
        )
        .cte("api_key")
    )
    by_id = and_(
        _connections.c.id == bindparam("id", type_=Integer()),
        or_(key.c.is_admin, _connections.c.owner_id == key.c.owner_id),
    )
    by_label = and_(
        _connections.c.owner_id == key.c.owner_id,
        _connections.c.label == bindparam("label", type_=String()),
    )
    target = (
        select(
            _connections.c.id,
            _connections.c.owner_id,
            _connections.c.label,
            _connections.c.status,
            key.c.api_key_id,
        )
        .select_from(key.join(_connections, or_(by_id, by_label)))
        # By id first (a NULL id compares to NULL: case keeps it last), then an active one,
        # then the newest: pick_targets' order for one ref.
        .order_by(
            case((by_id, _ZERO), else_=_ONE),
            case((_connections.c.status == _ACTIVE, _ZERO), else_=_ONE),
            _connections.c.id.desc(),
        )
        .limit(_ONE)
        .cte("target")
    )
    # Every column named: no Python-side default is left for SQLAlchemy to add.
    columns = [*value_keys, "attempts", "created_at", "updated_at"]
    queued_row = (
        insert(_notifications)
        .from_select(
            ["owner_id", "connection_id", "api_key_id", *columns],
            select(
                target.c.owner_id,
                target.c.id,
                target.c.api_key_id,
                *(bindparam(name, type_=_notifications.c[name].type) for name in columns),
            ).where(target.c.status == _ACTIVE),
        )
        .returning(_notifications.c.id)
        .cte("queued_row")
    )
    return select(queued_row.c.id, target.c.id, target.c.label).select_from(
        queued_row.join(target, true())
    )


_records = IdempotencyRecord.__table__
_notifications = NotificationRow.__table__
#: The queued row's id, taken before the row is written (the key's answer names it), and only
#: when the key is not claimed already: a repeat leaves no gap in the ids.
_NEXT_ID = (
    select(
        literal_column(
            "nextval(pg_get_serial_sequence('notifications', 'id'))", type_=Integer()
        ).label("id")
    )
    .where(
        ~exists().where(
            _records.c.api_key_id == bindparam("api_key_id"),
            _records.c.key == bindparam("idempotency_key"),
        )
    )
    .cte("next_id")
)


def keyed_insert(row_keys: list[str]) -> Any:
    """PostgreSQL: claim the idempotency key with its answer and insert the row, in one
    statement — so in autocommit one transaction, both or neither. The answer is the receipt
    with the row's id spliced in (``receipt_head`` id ``receipt_tail``); no row comes back
    when the key was claimed before (by then or meanwhile)."""
    claim = (
        insert_for("postgresql", _records)
        .from_select(
            ["api_key_id", "key", "request_hash", "status_code", "response_json", "created_at"],
            select(
                bindparam("api_key_id", type_=_records.c.api_key_id.type),
                bindparam("idempotency_key", type_=_records.c.key.type),
                bindparam("request_hash", type_=_records.c.request_hash.type),
                literal_column(str(ACCEPTED), type_=_records.c.status_code.type),
                bindparam("receipt_head", type_=String())
                + cast(_NEXT_ID.c.id, String)
                + bindparam("receipt_tail", type_=String()),
                bindparam("claimed_at", type_=UTCDateTime()),
            ).select_from(_NEXT_ID),
        )
        .on_conflict_do_nothing(index_elements=[_records.c.api_key_id, _records.c.key])
        .returning(_records.c.id)
        .cte("claim")
    )
    # Every column named: no Python-side default is left for SQLAlchemy to add.
    columns = [*row_keys, "attempts", "created_at", "updated_at"]
    return (
        insert(_notifications)
        .from_select(
            ["id", *columns],
            select(
                _NEXT_ID.c.id,
                *(bindparam(name, type_=_notifications.c[name].type) for name in columns),
            ).select_from(_NEXT_ID.join(claim, true())),
        )
        .returning(_notifications.c.id)
    )


def receipt_around_id(connection: ResolvedConnection) -> tuple[str, str]:
    """The receipt of one row queued to ``connection``: what comes before the row's id and
    what after (the id is its first value; tests/unit/test_fast_accept.py holds the two
    together with :func:`~notify_site.services.sending.receipt`)."""
    text = receipt([queued(0, connection)])
    head = text[: text.index(":0,") + 1]
    return head, text[len(head) + 1 :]


def queued(notification_id: int, connection: ResolvedConnection) -> QueuedNotification:
    """The row ``notification_id`` queued to ``connection``, as a receipt names it."""
    return QueuedNotification(
        id=notification_id, connection=ConnectionRef(connection.id, connection.label)
    )
