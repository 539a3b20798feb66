"""Sending: the one use case every way of sending goes through (SPEC 4.3).

The send form (``views/send.py``) and the JSON API (``api/views.py``) call :func:`send`; the
incoming webhooks and the scheduled sends will too. It owns, in this order:

1. **Who may send where** (:func:`find_targets`). The targets, named by id or label, are
   looked up among the connections the :class:`Sender` may reach. A person sends to their own
   chats, an admin too (the form offers only their own). An admin's API key may name anyone's
   connection by id: "a key sends only to its owner's connections (an admin's key: all)".
   Labels are always the sender's own. A target that is not active is refused, saying why.
2. **What is sent.** A :class:`~notify_site.notify_content.Content`, checked by
   :mod:`notify_site.notify_content` where the request was read (the form, the API's request
   schema): that check is the only one, and :func:`send` does not repeat it.
3. **At most once.** With an :class:`IdempotencyKey`, a repeat of the same request gets the
   first result again (``replayed``) and queues nothing; the same key with another request
   raises :class:`~notify_site.services.idempotency.IdempotencyKeyReusedError`. The record
   keeps the *receipt* (which rows were queued, to which connections), written in the same
   transaction as the rows, so a caller renders a replay exactly as it rendered the first
   answer. Keys are kept per API key (:mod:`notify_site.services.idempotency`).
4. **Durably queued.** One row per target (:mod:`notify_site.services.notifications`, the
   outbox), committed before :func:`send` returns; the workers deliver them.

What it raises is a :class:`~notify_site.services.ServiceError`: :class:`UnknownConnectionError`,
:class:`InactiveConnectionError`, the idempotency errors, and
:class:`~notify_site.services.notifications.NotificationValidationError` for no target.

The API's fast path (services/fast_accept.py) reads with its key what :func:`find_targets`
reads, and picks with :func:`pick_targets`, the same rules without words.

Past 400 lines on purpose: one idea, the send use case; its targets' rules, its idempotency
and its receipt are read together when a send is checked against what it promised.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from flask_babel import gettext
from sqlalchemy import and_, bindparam, or_, select

from notify_site import metrics
from notify_site.db_types import utcnow
from notify_site.extensions import db
from notify_site.i18n import status_word
from notify_site.models import ApiKey, Connection, ConnectionStatus, NotificationStatus, User
from notify_site.notify_content import Content
from notify_site.plain_text import ID_MAX
from notify_site.services import ServiceError, idempotency, notifications
from notify_site.services.api_keys import (
    AuthenticatedKey,
)
from notify_site.services.notifications import (
    ConnectionRef,
    QueuedNotification,
    ResolvedConnection,
)

# Ids are 32-bit wherever we store them: a longer number cannot be an id, only a label.
CONNECTION_ID_MAX = ID_MAX
# The status an idempotency record keeps beside the receipt: "accepted for delivery", what
# the API answers (the record's column predates this module; only sends that queued are kept).
ACCEPTED = 202


class UnknownConnectionError(ServiceError):
    """A target connection does not exist or is not one the sender may reach."""


class InactiveConnectionError(ServiceError):
    """A target connection is revoked, unreachable or in error."""


class Source(StrEnum):
    """Where a send came from. Each new way in (webhooks, schedules) adds its own."""

    FORM = "form"
    API = "api"
    WEBHOOK = "webhook"
    #: A recurring schedule's occurrence, or a dated batch's row.
    SCHEDULE = "schedule"


#: How far ahead a notification may be sent later.
SEND_LATER_MAX = timedelta(days=365)
SEND_AT_EXAMPLE = "2031-05-06T07:30:00+09:00"


class SendTimeError(ServiceError):
    """A send-later time that cannot be used (past, or more than a year ahead)."""


@dataclass(frozen=True)
class SendOptions:
    """How to send, besides what and where; the place for what later features add.

    ``on_queued`` (without an idempotency key) writes the caller's own record of the queued
    rows in the transaction that queues them: an incoming webhook's history entry.
    ``send_at`` sends later: the rows wait as ``scheduled`` until then (an aware time,
    checked by :func:`check_send_at`). ``occurrence_id`` marks the rows as the occurrence of
    a recurring schedule (queued now; ``send_at`` is then the occurrence's time).
    """

    source: Source
    on_queued: Callable[[list[QueuedNotification]], None] | None = None
    send_at: datetime | None = None
    occurrence_id: int | None = None


def check_send_at(send_at: datetime, now: datetime | None = None) -> datetime:
    """``send_at`` as an aware UTC time if it is in the future and at most a year ahead,
    else :class:`SendTimeError` saying why."""
    now = now or utcnow()
    if send_at.tzinfo is None:
        raise SendTimeError(
            gettext("give the time with its offset, e.g. %(example)s", example=SEND_AT_EXAMPLE)
        )
    if send_at <= now:
        raise SendTimeError(gettext("must be in the future"))
    if send_at > now + SEND_LATER_MAX:
        raise SendTimeError(gettext("must be at most a year ahead"))
    return send_at.astimezone(UTC)


@dataclass(frozen=True)
class Sender:
    """Who sends: a person (``id``, ``is_admin``), directly or through an API key of theirs."""

    id: int
    is_admin: bool
    api_key: ApiKey | AuthenticatedKey | None = None

    @classmethod
    def person(cls, user: User) -> Sender:
        """A signed-in person, sending from the site's own pages."""
        return cls(id=user.id, is_admin=user.is_admin)

    @classmethod
    def by_key(cls, api_key: AuthenticatedKey) -> Sender:
        """An API key, acting for its owner (what the API read with the key: no query)."""
        return cls(id=api_key.owner.id, is_admin=api_key.owner.is_admin, api_key=api_key)

    @property
    def reaches_every_connection(self) -> bool:
        """Whether any connection may be named by id: only through an admin's API key."""
        return self.is_admin and self.api_key is not None


@dataclass(frozen=True)
class IdempotencyKey:
    """A caller's key for one request, and the fingerprint of that request."""

    key: str
    fingerprint: str

    @classmethod
    def for_request(
        cls,
        key: str,
        targets: Sequence[int | str],
        content: Content,
        send_at: datetime | None = None,
    ) -> IdempotencyKey:
        """``key`` for a send of ``content`` to ``targets`` (later, at ``send_at``),
        fingerprinted by :func:`request_fingerprint`."""
        return cls(key, request_fingerprint(targets, content, send_at))


@dataclass(frozen=True)
class SendResult:
    """What a send queued, one notification per target in order; ``replayed`` when it is the
    receipt of an earlier send with the same idempotency key (nothing new was queued)."""

    notifications: list[QueuedNotification]
    replayed: bool = False


def send(
    sender: Sender,
    targets: Sequence[int | str],
    content: Content,
    *,
    options: SendOptions,
    idempotency_key: IdempotencyKey | None = None,
) -> SendResult:
    """Queue ``content`` for each of ``targets`` (ids or labels), once per idempotency key.

    See the module: the targets must be the sender's to reach and active; the rows are
    committed before this returns. An idempotency key needs an API key (``sender.api_key``).
    """
    if not isinstance(content, Content):
        raise TypeError("send takes a Content checked by notify_content")
    timing = {"send_at": options.send_at, "occurrence_id": options.occurrence_id}
    if options.send_at is not None and options.occurrence_id is None:
        try:
            timing["send_at"] = check_send_at(options.send_at)
        except SendTimeError as error:
            raise notifications.NotificationValidationError({"send_at": str(error)}) from None
    if idempotency_key is None:
        # Nothing to look up or store. The rows are committed before anything else is done,
        # so SQLite's one write lock is held for the INSERT alone.
        found = find_targets(sender, targets)
        rows = notifications.queue_notifications(
            sender,
            found,
            content,
            api_key=sender.api_key,
            before_commit=options.on_queued,
            **timing,
        )
        metrics.notifications_queued(options.source, len(rows))
        return SendResult(rows)
    if sender.api_key is None:
        raise ValueError("idempotency keys are kept per API key: send through one")
    if options.on_queued is not None:
        raise ValueError("on_queued is for sends without an idempotency key")

    def queue() -> tuple[int, str]:
        found = find_targets(sender, targets)
        rows = notifications.add_notifications(
            sender, found, content, api_key=sender.api_key, **timing
        )
        return ACCEPTED, receipt(rows)

    answer = idempotency.execute(
        sender.api_key, idempotency_key.key, idempotency_key.fingerprint, queue
    )
    # The first result is read back from its receipt too: a replay cannot differ from it.
    rows = _read_receipt(answer.body)
    if not answer.replayed:
        metrics.notifications_queued(options.source, len(rows))
    return SendResult(rows, replayed=answer.replayed)


def request_fingerprint(
    targets: Sequence[int | str], content: Content, send_at: datetime | None = None
) -> str:
    """The fingerprint of a send request, for its idempotency key.

    The same request sent as JSON or as multipart has the same fingerprint; an uploaded file
    counts by the SHA-256 of its bytes. (Records written before keep matching: the canonical
    form is the one the API used when it computed this itself; a send-later time is in it
    only when given, as the same instant whatever offset it was written with.)
    """
    upload = content.image_file
    later = {} if send_at is None else {"send_at": send_at.astimezone(UTC).isoformat()}
    return idempotency.fingerprint(
        {
            **later,
            "connections": list(targets),
            "message": content.message,
            "sticker_package_id": content.sticker_package_id,
            "sticker_id": content.sticker_id,
            "image_thumbnail_url": content.image_thumbnail_url,
            "image_fullsize_url": content.image_fullsize_url,
            "image_file": None
            if upload is None
            else {
                "filename": upload.filename,
                "content_type": upload.content_type,
                "sha256": hashlib.sha256(upload.data).hexdigest(),
            },
            "notification_disabled": content.notification_disabled,
        }
    )


# ---------------------------------------------------------------------------- the receipt
# What an idempotency record keeps: the queued rows and their connections. Records written
# before this module kept the API's answer, which holds the same keys (and more, ignored).


def receipt(rows: list[QueuedNotification]) -> str:
    items = []
    for row in rows:
        item: dict[str, Any] = {
            "id": row.id,
            "connection": {"id": row.connection.id, "label": row.connection.label},
        }
        if row.send_at is not None:  # sent later: the answer said "scheduled", and when
            item.update(status=row.status, send_at=row.send_at.isoformat())
        items.append(item)
    return json.dumps({"notifications": items}, ensure_ascii=False, separators=(",", ":"))


def _read_receipt(text: str) -> list[QueuedNotification]:
    items: list[dict[str, Any]] = json.loads(text)["notifications"]
    return [
        QueuedNotification(
            id=item["id"],
            connection=ConnectionRef(item["connection"]["id"], item["connection"]["label"]),
            status=item.get("status", NotificationStatus.QUEUED),
            send_at=datetime.fromisoformat(item["send_at"]) if "send_at" in item else None,
        )
        for item in items
    ]


# ---------------------------------------------------------------------------- the targets

_connections = Connection.__table__
_RESOLVED_COLUMNS = (
    _connections.c.id,
    _connections.c.owner_id,
    _connections.c.label,
    _connections.c.status,
)
# The candidates for the refs, in one query: the rows with one of the ids (whose they are is
# checked afterwards) and the sender's own rows with one of the labels. Built once: building a
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


def find_targets(sender: Sender, refs: Sequence[int | str]) -> list[ResolvedConnection]:
    """The connections ``refs`` name, in the order given, without repeats; each one the
    sender may reach and active, else :class:`UnknownConnectionError` or
    :class:`InactiveConnectionError` for the first that is not.

    A string of digits is an id first, then a label. When several of the sender's connections
    share a label, the active one wins, then the newest. One query, whatever the refs.
    """
    ids = {number for ref in refs if (number := ref_id(ref)) is not None}
    labels = {ref for ref in refs if isinstance(ref, str)}
    if len(refs) == 1:
        (ref,) = refs
        statement = _CONNECTION_BY_REF
        parameters = {
            "id": ref_id(ref),
            "owner_id": sender.id,
            "label": ref if isinstance(ref, str) else None,
        }
    else:
        statement = _CONNECTIONS_BY_REFS
        parameters = {"ids": list(ids), "owner_id": sender.id, "labels": list(labels)}
    candidates = [ResolvedConnection(*row) for row in db.session.execute(statement, parameters)]
    found = choose_targets(sender, refs, candidates)
    for connection in found:
        if isinstance(connection, Exception):
            raise connection
    return found  # type: ignore[return-value]


def choose_targets(
    sender: Sender, refs: Sequence[int | str], candidates: list[ResolvedConnection]
) -> list[ResolvedConnection | ServiceError]:
    """The rules of :func:`find_targets` over rows already read: the connections in order,
    without repeats; or, for the first ref that names none or an inactive one, the error
    alone."""
    picked = pick_targets(sender, refs, candidates)
    if isinstance(picked, list):
        return picked  # type: ignore[return-value]
    ref, connection = picked
    if connection is None:
        return [UnknownConnectionError(gettext("no connection %(ref)s", ref=repr(ref)))]
    return [_inactive_problem(connection)]  # type: ignore[list-item]


def pick_targets(
    sender: Sender, refs: Sequence[int | str], candidates: list[ResolvedConnection]
) -> list[ResolvedConnection] | tuple[int | str, ResolvedConnection | None]:
    """:func:`choose_targets` without words (the API's fast path has no language to word
    them in): the connections, or the first ref that fails with the connection it named
    (None: it named none; else the connection is not active)."""
    any_owner = sender.reaches_every_connection
    ids = {number for ref in refs if (number := ref_id(ref)) is not None}
    labels = {ref for ref in refs if isinstance(ref, str)}
    by_id = {c.id: c for c in candidates if c.id in ids and (any_owner or c.owner_id == sender.id)}
    by_label: dict[str, ResolvedConnection] = {}
    for connection in sorted(candidates, key=_label_preference):
        if connection.owner_id == sender.id and connection.label in labels:
            by_label[connection.label] = connection  # the most preferred comes last

    found: dict[int, ResolvedConnection] = {}
    for ref in refs:
        connection = by_id.get(ref_id(ref))
        if connection is None and isinstance(ref, str):
            connection = by_label.get(ref)
        if connection is None or connection.status != ConnectionStatus.ACTIVE:
            return ref, connection
        found.setdefault(connection.id, connection)
    return list(found.values())


def _inactive_problem(connection: ResolvedConnection) -> InactiveConnectionError | None:
    if connection.status == ConnectionStatus.ACTIVE:
        return None
    if connection.status == ConnectionStatus.UNREACHABLE:
        return InactiveConnectionError(
            gettext(
                "connection %(label)s is unreachable: the chat blocked the bot or removed it "
                "from the group. Once it is back, press Refresh.",
                label=repr(connection.label),
            )
        )
    return InactiveConnectionError(
        gettext(
            "connection %(label)s is %(status)s; connect it again",
            label=repr(connection.label),
            status=status_word(connection.status),
        )
    )


def ref_id(ref: int | str) -> int | None:
    """The id a ref names, if it can name one."""
    if isinstance(ref, str):
        if not ref.isdecimal():  # what int() reads; isdigit() would let "²" through
            return None
        ref = int(ref)
    return ref if 0 < ref <= CONNECTION_ID_MAX else None


def _label_preference(connection: ResolvedConnection) -> tuple[bool, int]:
    return connection.status == ConnectionStatus.ACTIVE, connection.id
