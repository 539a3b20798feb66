"""The fast accept's statements (services/fast_accept.py), built once per process.

- :data:`LOOKUP`: the key, its state and its owner's, and the candidate connections — the
  general path's two reads (``api_keys.authenticate``, ``sending.find_targets``) in one;
- :func:`accept_in_one`: PostgreSQL's whole accept — the key, the target, the row, and the
  idempotency key's claim with its answer already in it — in one statement;
- :data:`RECEIPT_PARTS`: the answer that claim stores, in the pieces around its values
  (of :func:`queued`, the row as a receipt names it).
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import (
    Integer,
    String,
    and_,
    bindparam,
    case,
    cast,
    exists,
    func,
    insert,
    literal,
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
_records = IdempotencyRecord.__table__
_notifications = NotificationRow.__table__


def accept_in_one(value_keys: list[str], *, keyed: bool) -> Any:
    """PostgreSQL: a whole accept in one statement — the key, the connection it names, the
    row, and with ``keyed`` the idempotency key's claim with its answer — given the row's own
    values (``value_keys``: :func:`~notify_site.services.notifications.queued_values`' keys),
    the read's (``key_hash``, ``fresh_after``, ``id``, ``label``) and, keyed, the claim's
    (``idempotency_key``, ``request_hash``, ``claimed_at``). The row's id and its
    connection's id and label come back; nothing comes back, and nothing is written, when
    this is not the plain case — or, keyed, when the key was claimed before (by then or
    meanwhile: the general path then replays or refuses).

    The rules are :data:`LOOKUP`'s and :func:`~notify_site.services.sending.pick_targets`'
    for one ref, written in SQL: an active key of an enabled owner, its last use recent
    enough not to be recorded; the connection named by id (any one through an admin's key,
    else the owner's) before one named by label (the owner's, an active one before an
    inactive one, then the newest), and only an active one is sent to
    (tests/unit/test_fast_accept.py compares every answer and row with the general path's on
    PostgreSQL). In autocommit the statement is its own transaction: claim and row are both
    written or neither.
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
        # then the newest: pick_targets' order for one ref. The status is checked after the
        # pick (an inactive first choice is refused, not passed over for another).
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
    values = [bindparam(name, type_=_notifications.c[name].type) for name in columns]
    if not keyed:
        queued_row = insert(_notifications).from_select(
            ["owner_id", "connection_id", "api_key_id", *columns],
            select(target.c.owner_id, target.c.id, target.c.api_key_id, *values).where(
                target.c.status == _ACTIVE
            ),
        )
    else:
        # The row's id, taken before the row is written (the key's answer names it), and
        # only when the key is not claimed already: a repeat leaves no gap in the ids.
        next_id = (
            select(
                literal_column(
                    "nextval(pg_get_serial_sequence('notifications', 'id'))", type_=Integer()
                ).label("id")
            )
            .select_from(target)
            .where(
                target.c.status == _ACTIVE,
                ~exists().where(
                    _records.c.api_key_id == target.c.api_key_id,
                    _records.c.key == bindparam("idempotency_key"),
                ),
            )
            .cte("next_id")
        )
        head, between_ids, before_label, tail = RECEIPT_PARTS
        answer = (
            literal(head)
            + cast(next_id.c.id, String)
            + literal(between_ids)
            + cast(target.c.id, String)
            + literal(before_label)
            # PostgreSQL's JSON string escapes what json.dumps(ensure_ascii=False) escapes,
            # the same way (a test holds the two together over awkward labels).
            + cast(func.to_json(target.c.label), String)
            + literal(tail)
        )
        claim = (
            insert_for("postgresql", _records)
            .from_select(
                ["api_key_id", "key", "request_hash", "status_code", "response_json", "created_at"],
                select(
                    target.c.api_key_id,
                    bindparam("idempotency_key", type_=_records.c.key.type),
                    bindparam("request_hash", type_=_records.c.request_hash.type),
                    literal_column(str(ACCEPTED), type_=_records.c.status_code.type),
                    answer,
                    bindparam("claimed_at", type_=UTCDateTime()),
                ).select_from(next_id.join(target, true())),
            )
            .on_conflict_do_nothing(index_elements=[_records.c.api_key_id, _records.c.key])
            .returning(_records.c.id)
            .cte("claim")
        )
        queued_row = insert(_notifications).from_select(
            ["id", "owner_id", "connection_id", "api_key_id", *columns],
            select(
                next_id.c.id, target.c.owner_id, target.c.id, target.c.api_key_id, *values
            ).select_from(next_id.join(claim, true()).join(target, true())),
        )
    written = queued_row.returning(_notifications.c.id).cte("queued_row")
    return select(written.c.id, target.c.id, target.c.label).select_from(
        written.join(target, true())
    )


def _receipt_parts() -> tuple[str, str, str, str]:
    """The receipt of one queued row (:func:`~notify_site.services.sending.receipt`) in the
    four pieces around its three values: the row's id, the connection's id and its label
    (as a JSON string)."""
    label = "\x00"
    text = receipt([queued(1, ResolvedConnection(2, 0, label, ConnectionStatus.ACTIVE))])
    head, rest = text.split("1", 1)
    between_ids, rest = rest.split("2", 1)
    before_label, tail = rest.split(json.dumps(label), 1)
    return head, between_ids, before_label, tail


def queued(notification_id: int, connection: ResolvedConnection) -> QueuedNotification:
    """The row ``notification_id`` queued to ``connection``, as a receipt names it."""
    return QueuedNotification(
        id=notification_id, connection=ConnectionRef(connection.id, connection.label)
    )


#: :func:`_receipt_parts`, worked out once.
RECEIPT_PARTS = _receipt_parts()
