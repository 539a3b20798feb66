"""``Idempotency-Key`` for the API's POSTs: a repeated request gets the first answer again.

What the first request that carries a key answered (a status and a JSON text: for a send,
its receipt, see :mod:`notify_site.services.sending`) is stored in an
:class:`~notify_site.models.IdempotencyRecord` **in the same transaction** as the rows the
request wrote, so either both are on disk or neither is. A repeat with the same key and the
same request gets that stored answer, byte for byte, and writes nothing; the same key with a
different request is refused with :class:`IdempotencyKeyReusedError`.

Concurrent repeats are decided by the unique constraint on ``(api_key_id, key)``: every request
*claims* the key first, before writing anything else, with one
``INSERT … ON CONFLICT DO NOTHING RETURNING id`` — a new key costs that one statement and no
read. PostgreSQL makes a second insert of the same key wait for the first transaction, then
insert nothing (or insert, if the first rolled back); SQLite lets one writer in at a time.
Only the loser reads: it ends its transaction, reads the winner's committed answer and replays
it.

Only answers that wrote something are stored. A request refused for bad input wrote nothing,
so a corrected retry may reuse its key.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from flask_babel import gettext
from sqlalchemy import bindparam, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session, scoped_session

from notify_site.db_types import utcnow
from notify_site.extensions import db
from notify_site.models import ApiKey, IdempotencyRecord
from notify_site.on_conflict import insert_for
from notify_site.services import ServiceError

if TYPE_CHECKING:
    from notify_site.services.api_keys import AuthenticatedKey

KEY_MAX_CHARS = 255
# A claim can only fail because another request holds the key; that request has committed by
# the time our insert fails, so the next look finds its answer. The bound is a safety net.
MAX_CLAIMS = 3
#: How long a key's answer is replayed: after that the same key is a new request.
IDEMPOTENCY_TTL = timedelta(hours=24)


class IdempotencyKeyError(ServiceError):
    """The ``Idempotency-Key`` value is empty, too long, or not printable ASCII."""


class IdempotencyKeyReusedError(ServiceError):
    """The key was already used with a different request."""


class IdempotencyConflictError(ServiceError):
    """The key could be neither claimed nor replayed (another request kept failing on it)."""


@dataclass(frozen=True)
class Answer:
    """An answer to send: status and JSON text; ``replayed`` when it is a stored one."""

    status_code: int
    body: str
    replayed: bool = False


def check_key(key: str) -> str:
    """``key`` if it is a usable Idempotency-Key (1–255 printable ASCII characters)."""
    if not key or len(key) > KEY_MAX_CHARS:
        raise IdempotencyKeyError(gettext("must be 1 to %(max)s characters", max=KEY_MAX_CHARS))
    if not _printable_ascii(key):
        raise IdempotencyKeyError(gettext("must be printable ASCII"))
    return key


def is_usable_key(key: str) -> bool:
    """Whether :func:`check_key` takes ``key`` (no words: for a caller with no language)."""
    return 0 < len(key) <= KEY_MAX_CHARS and _printable_ascii(key)


def _printable_ascii(key: str) -> bool:
    return key.isascii() and key.isprintable()


def fingerprint(request: Mapping[str, Any]) -> str:
    """SHA-256 of a canonical JSON form of a validated request (key order and spacing fixed)."""
    canonical = json.dumps(request, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def execute(
    api_key: ApiKey | AuthenticatedKey,
    key: str | None,
    request_hash: str,
    action: Callable[[], tuple[int, str]],
) -> Answer:
    """Run ``action`` and commit what it wrote in the session's transaction, at most once per key.

    ``action`` writes rows (without committing) and returns the status and JSON text of the
    answer. Without a key it simply runs and commits. With a key, a stored answer is replayed
    instead (or :class:`IdempotencyKeyReusedError` raised when ``request_hash`` differs), and a
    fresh answer is stored with the rows. Any error rolls everything back.
    """
    if key is None:
        try:
            status_code, body = action()
            db.session.commit()
        except Exception:
            db.session.rollback()
            raise
        return Answer(status_code, body)

    for _ in range(MAX_CLAIMS):
        record_id = _claim(api_key, key, request_hash)
        if record_id is None:
            # Another request holds the key: end this transaction (it wrote nothing) and read
            # the answer it committed.
            db.session.rollback()
            stored = stored_answer(api_key, key, request_hash)
            if stored is not None:
                return stored
            continue  # its holder rolled back meanwhile: claim again
        try:
            status_code, body = action()
            record_answer_in(db.session, record_id, status_code, body)
            db.session.commit()
        except Exception:
            db.session.rollback()
            raise
        return Answer(status_code, body)
    raise IdempotencyConflictError(
        gettext("Another request with this Idempotency-Key is failing; try again in a moment.")
    )


def stored_answer(api_key: ApiKey | AuthenticatedKey, key: str, request_hash: str) -> Answer | None:
    """The stored answer for ``key``, None if there is none.

    A record older than 24 hours has expired (services/housekeeping.py deletes them in the
    background): it is deleted here in the caller's transaction, before the new claim, and the
    key is free again. Raises :class:`IdempotencyKeyReusedError` when it answered a different
    request.
    """
    record = db.session.scalar(
        select(IdempotencyRecord).where(
            IdempotencyRecord.api_key_id == api_key.id, IdempotencyRecord.key == key
        )
    )
    if record is None:
        return None
    if record.created_at < utcnow() - IDEMPOTENCY_TTL:
        db.session.delete(record)
        db.session.flush()
        return None
    if record.request_hash != request_hash:
        raise IdempotencyKeyReusedError(
            gettext(
                "This Idempotency-Key was already used with a different request. "
                "Use a new key for a new request."
            )
        )
    return Answer(record.status_code, record.response_json, replayed=True)


_records = IdempotencyRecord.__table__
# Built once per dialect: the claim is the dialects' INSERT … ON CONFLICT DO NOTHING RETURNING,
# which SQLAlchemy's generic insert() does not spell.
_CLAIMS = {
    name: insert_for(name, _records)
    .on_conflict_do_nothing(index_elements=[_records.c.api_key_id, _records.c.key])
    .returning(_records.c.id)
    for name in ("postgresql", "sqlite")
}
RECORD_ANSWER = (
    update(_records)
    .where(_records.c.id == bindparam("record_id"))
    .values(status_code=bindparam("status_code"), response_json=bindparam("body"))
)


def _claim(api_key: ApiKey | AuthenticatedKey, key: str, request_hash: str) -> int | None:
    """Insert the record that reserves ``key`` and return its id; None if another request
    holds it (nothing inserted, nothing read).

    This is the transaction's first write: the rows the action adds will share it.
    """
    return claim_in(db.session, api_key.id, key, request_hash)


def claim_in(
    connection: Connection | Session | scoped_session, api_key_id: int, key: str, request_hash: str
) -> int | None:
    """:func:`_claim` on any connection or session."""
    bind = connection if isinstance(connection, Connection) else connection.get_bind()
    return connection.execute(
        claim_statement(bind.dialect.name), claim_values(api_key_id, key, request_hash)
    ).scalar()


def claim_statement(dialect_name: str) -> Any:
    """The claim's ``INSERT … ON CONFLICT DO NOTHING RETURNING id`` for a database."""
    return _CLAIMS[dialect_name]


def claim_values(api_key_id: int, key: str, request_hash: str) -> dict[str, Any]:
    """The claim's values (the API's fast path runs the claim itself, services/fast_accept.py)."""
    return {
        "api_key_id": api_key_id,
        "key": key,
        "request_hash": request_hash,
        "status_code": 0,  # filled in before the commit: no one ever sees the placeholder
        "response_json": "",
        "created_at": utcnow(),
    }


def record_answer_in(
    connection: Connection | Session | scoped_session, record_id: int, status_code: int, body: str
) -> None:
    """Keep the answer of the claim ``record_id``, in the claim's transaction."""
    connection.execute(RECORD_ANSWER, answer_values(record_id, status_code, body))


def answer_values(record_id: int, status_code: int, body: str) -> dict[str, Any]:
    """The values of :data:`RECORD_ANSWER`."""
    return {"record_id": record_id, "status_code": status_code, "body": body}
