"""The common accept in one read and one shared write, outside Flask (issue 18).

An API key sending to one connection — by id or label, checked content, no send-later, no
file, with or without an ``Idempotency-Key`` — is most of the API's traffic. The API's edge
(notify_site/api/fast_accept.py) reads the request and hands it here, before Flask sees it:

1. **One read** on a database connection of the fast path's own: the key (by its hash), its
   owner's role and state, and the candidate connections (by id, or the owner's by label), in
   one statement compiled once for the database at hand. The connection is the engine's (so
   the engine's connect hooks ran: SQLite's pragmas) but kept out of the pool, in autocommit,
   in a small stack of its own (:data:`KEEP_IDLE`), so a read costs one round trip: no pool
   checkout, no ping, no BEGIN/ROLLBACK.
2. **The same rules** as the general path: the key's hash compared in constant time, a revoked
   key or a disabled owner refused at once (nothing about keys is cached), the targets picked
   by :func:`~notify_site.services.sending.pick_targets` (PostgreSQL's one-statement accept
   writes them in SQL: the key found by its hash in the index, the target by the same order).
3. **One write**, in the process's next group commit (services/group_commit.py): claim the
   idempotency key when there is one (``INSERT … ON CONFLICT DO NOTHING RETURNING``), insert
   the row, keep the receipt as the key's answer — all in one transaction, released once it
   has committed.

   On **PostgreSQL** the accept skips the group commit and runs on the fast path's own
   connections, in autocommit (each statement its own transaction, committed — its WAL
   flushed, ``synchronous_commit`` on — when it returns). A request without an
   ``Idempotency-Key`` is **one statement** for everything: the key, the connection (by the
   same rules, written in SQL) and the row (``fast_statements.accept_in_one``: one round
   trip; nothing is written when it is not the plain case). One with a key is one statement
   too, which also claims the key with its answer already in it (the receipt, the row's id
   taken from the sequence first) — claim and row both or neither, and nothing when the key
   was claimed before. Steps 1 and 3 above are SQLite's. PostgreSQL already lets one WAL
   flush cover the commits of concurrent sessions, so handing the row to the writer thread
   only added the hand-off, a pool checkout, ``BEGIN`` and ``COMMIT`` round trips: measured
   under gunicorn 2 × 8 (bench/README.md, seventh round), the accept ran at ~1,800 req/s
   instead of ~1,330, its web process's CPU per request 0.63–0.68 ms instead of 0.81–0.88;
   the read folded into the write took a plain accept from 0.70 to 0.49 M instructions
   (eighth round). SQLite keeps the group commit: there every commit is a
   ``synchronous=FULL`` fsync under the database's one write lock, and sharing it is the gain.

Anything else, and any doubt, returns None **having written nothing**, and the request goes
on to Flask, whose general path answers it in full: no such key, revoked, a disabled owner, a
key whose last use is due to be recorded, a connection that is missing or inactive, an
idempotency key already claimed (the general path replays its answer or refuses it), a
database error (the general path answers 503 when the database is down). The two paths agree
on every answer and row (tests/unit/test_fast_accept.py: a property test over random keys,
owners, labels, revocations and inputs).

A write that fails (the group's commit raised) also returns None: nothing of it was written
unless the database lost the connection *during* COMMIT, which neither path can tell apart
from a commit that failed; the general path then writes the row again — a duplicate, once,
for a request without an ``Idempotency-Key``, as a client's own retry would.
"""

from __future__ import annotations

import contextlib
import hmac
import logging
import os
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from notify_site import metrics
from notify_site.db_types import utcnow
from notify_site.notify_content import Content
from notify_site.prepared import Prepared
from notify_site.services import group_commit, idempotency, notifications
from notify_site.services.api_keys import TOUCH_INTERVAL, AuthenticatedKey, KeyOwner
from notify_site.services.fast_statements import LOOKUP, accept_in_one, queued
from notify_site.services.notifications import (
    ConnectionRef,
    QueuedNotification,
    ResolvedConnection,
)
from notify_site.services.sending import (
    ACCEPTED,
    IdempotencyKey,
    Sender,
    Source,
    pick_targets,
    receipt,
    ref_id,
)

log = logging.getLogger(__name__)

#: Connections kept between reads, per process (more are opened when more reads run at once,
#: and closed after). A gunicorn process runs at most its threads' worth of reads at a time.
KEEP_IDLE = 8


class FastAccept:
    """The fast accept of one app's engine: its compiled read, its threads' connections."""

    def __init__(
        self, engine: Engine, committer: Callable[[], group_commit.GroupCommitter] | None
    ) -> None:
        self.engine = engine
        # PostgreSQL: each accept writes alone, in one autocommitted statement (see above).
        self.insert_alone = engine.dialect.name == "postgresql"
        # None: each accept commits alone (always on PostgreSQL: its writer is never made).
        self.committer = None if self.insert_alone else committer
        self.lookup = Prepared(LOOKUP, engine.dialect)
        # Compiled for the keys of the first row it is given (notifications.queued_row's).
        self._insert: Prepared | None = None
        self._alone: dict[bool, Prepared] = {}  # PostgreSQL's, by keyed or not, likewise
        self.claim = Prepared(
            idempotency.claim_statement(engine.dialect.name),
            engine.dialect,
            list(idempotency.claim_values(0, "", "")),
        )
        self.record_answer = Prepared(idempotency.RECORD_ANSWER, engine.dialect)
        self.database_errors: tuple[type[BaseException], ...] = (engine.dialect.loaded_dbapi.Error,)
        self._lock = threading.Lock()
        self._idle: list[Any] = []  # connections between two reads, the last used on top
        self._pid = os.getpid()
        self._inherited: list[Any] = []  # a parent process's: never used, never closed here
        event.listen(engine, "engine_disposed", lambda _engine: self.close())

    def _insert_for(self, row: dict[str, Any]) -> Prepared:
        """The INSERT compiled for ``row``'s keys: every row is made by
        ``notifications.queued_row``, so the first one's keys are every row's. (Two threads
        that compile it at once make the same statement; the last one kept.)"""
        if self._insert is None:
            self._insert = Prepared(
                notifications.INSERT_NOTIFICATION, self.engine.dialect, list(row)
            )
        return self._insert

    def _alone_for(self, values: dict[str, Any], *, keyed: bool) -> Prepared:
        """PostgreSQL's whole accept (:func:`~notify_site.services.fast_statements.
        accept_in_one`), with or without the idempotency key's claim, compiled for
        ``values``' keys (as :meth:`_insert_for`)."""
        prepared = self._alone.get(keyed)
        if prepared is None:
            prepared = Prepared(accept_in_one(list(values), keyed=keyed), self.engine.dialect)
            self._alone[keyed] = prepared
        return prepared

    # -------------------------------------------------------------------------- connections

    def _take(self) -> Any:
        """A connection for one accept's statements: an idle one, else a new one."""
        with self._lock:
            if self._pid != os.getpid():  # forked: the parent's connections stay the parent's
                self._inherited, self._idle, self._pid = self._idle, [], os.getpid()
            if self._idle:
                return self._idle.pop()
        fairy = self.engine.raw_connection()
        driver = fairy.driver_connection
        fairy.detach()  # ours alone, closed with it: never back in the pool in autocommit
        if self.engine.dialect.name == "sqlite":
            driver.isolation_level = None  # no transaction around a lone read
        else:
            driver.autocommit = True
            # The read's ``id = … OR (owner … AND label = …)`` gets a custom plan on every
            # execution (PostgreSQL's estimate prefers one once the parameters are known),
            # each costing the server more than the read: at 10,000 connections and 2,000
            # keys 0.24–0.27 ms of its CPU per read, against 0.065 ms with the generic plan,
            # a BitmapOr of the two indexes (bench/README.md, seventh round). The fast path's
            # statements are all of that kind, so its own connections keep generic plans.
            driver.execute("SET plan_cache_mode = force_generic_plan")
        return fairy

    def _give_back(self, fairy: Any) -> None:
        """Keep ``fairy`` for the next read, or close it when enough are kept already (a
        server that starts a thread per request never holds more than its peak)."""
        with self._lock:
            if len(self._idle) < KEEP_IDLE and self._pid == os.getpid():
                self._idle.append(fairy)
                return
        self._close(fairy)

    def _close(self, fairy: Any) -> None:
        with contextlib.suppress(*self.database_errors):  # already broken: nothing to close
            fairy.close()

    def close(self) -> None:
        """Close the idle connections (when the engine is disposed: a detached connection is
        not the pool's to close)."""
        with self._lock:
            idle, self._idle = self._idle, []
        for fairy in idle:
            self._close(fairy)

    def _on_connection(self, what: str, work: Callable[[Any], Any]) -> tuple[bool, Any]:
        """``work(cursor)`` on one of the fast path's connections (in autocommit: each
        statement is its own transaction); (False, None) when the database failed (the
        connection is dropped: it may be broken, the next use opens a fresh one)."""
        fairy = None
        try:
            fairy = self._take()
            cursor = fairy.cursor()
            try:
                value = work(cursor)
            finally:
                cursor.close()
        except self.database_errors as error:
            log.warning("fast accept: %s failed (%s); the general path answers", what, error)
            if fairy is not None:
                self._close(fairy)
            return False, None
        self._give_back(fairy)
        return True, value

    def _read(self, cursor: Any, key_hash: str, ref: int | str) -> list[tuple]:
        """The key's row joined with each candidate connection (empty: no key or no
        candidate)."""
        cursor.execute(self.lookup.sql, self.lookup.parameters(_lookup(key_hash, ref, utcnow())))
        return cursor.fetchall()

    @staticmethod
    def _target(
        rows: list[tuple], key_hash: str, ref: int | str
    ) -> tuple[AuthenticatedKey, ResolvedConnection] | None:
        """The key and the one connection the read found for ``ref``, when both are simply
        valid (an active, recently used key of an enabled owner; an active connection)."""
        if not rows:
            return None
        key_id, stored_hash, active, fresh, owner_id, is_admin, enabled = rows[0][:7]
        if not (hmac.compare_digest(stored_hash, key_hash) and active and fresh and enabled):
            return None
        api_key = AuthenticatedKey(
            id=key_id, owner=KeyOwner(id=owner_id, is_admin=bool(is_admin)), last_used_at=None
        )
        picked = pick_targets(
            Sender.by_key(api_key),
            [ref],
            [ResolvedConnection(row[7], row[8], row[9], row[10]) for row in rows],
        )
        if not isinstance(picked, list):
            return None
        (connection,) = picked
        return api_key, connection

    # -------------------------------------------------------------------------- the accept

    def accept(
        self,
        key_hash: str,
        ref: int | str,
        content: Content,
        idempotency_key: str | None = None,
    ) -> QueuedNotification | None:
        """Queue ``content`` to ``ref`` for the key whose hash is ``key_hash``, durably, when
        this is the common case; else None, having written nothing (see the module)."""
        if self.insert_alone:
            written, found = self._on_connection(
                "accept",
                lambda cursor: self._alone_on(cursor, key_hash, ref, content, idempotency_key),
            )
            if not written or found is None:
                return None
        else:
            found = self._accept_in_group(key_hash, ref, content, idempotency_key)
            if found is None:
                return None
        metrics.notifications_queued(Source.API, 1)
        return found

    def _alone_on(
        self,
        cursor: Any,
        key_hash: str,
        ref: int | str,
        content: Content,
        idempotency_key: str | None,
    ) -> QueuedNotification | None:
        """PostgreSQL: the whole accept as one statement
        (:func:`~notify_site.services.fast_statements.accept_in_one`), in autocommit its own
        transaction: one round trip."""
        values = notifications.queued_values(content)
        now = utcnow()
        parameters = {
            **values,
            "attempts": 0,
            "created_at": now,
            "updated_at": now,
            **_lookup(key_hash, ref, now),
        }
        if idempotency_key is not None:
            key = IdempotencyKey.for_request(idempotency_key, [ref], content)
            parameters.update(idempotency_key=key.key, request_hash=key.fingerprint, claimed_at=now)
        statement = self._alone_for(values, keyed=idempotency_key is not None)
        found = statement.row(cursor, parameters)
        if found is None:  # not the plain case, or the key claimed before: nothing written
            return None
        notification_id, connection_id, label = found
        return QueuedNotification(
            id=notification_id, connection=ConnectionRef(connection_id, label)
        )

    def _accept_in_group(
        self, key_hash: str, ref: int | str, content: Content, idempotency_key: str | None
    ) -> QueuedNotification | None:
        """SQLite: one read, then the write in the process's next group commit."""
        written, rows = self._on_connection(
            "read", lambda cursor: self._read(cursor, key_hash, ref)
        )
        target = self._target(rows, key_hash, ref) if written else None
        if target is None:
            return None
        api_key, connection = target
        row = notifications.queued_row(connection, content, api_key)
        key = (
            None
            if idempotency_key is None
            else IdempotencyKey.for_request(idempotency_key, [ref], content)
        )

        def write(transaction: Connection) -> int | None:
            # On the transaction's own DB-API connection: SQLAlchemy begins and commits it.
            cursor = transaction.connection.cursor()
            try:
                record_id = None
                if key is not None:
                    record_id = self.claim.run(
                        cursor, idempotency.claim_values(api_key.id, key.key, key.fingerprint)
                    )
                    if record_id is None:  # claimed before: the general path replays or refuses
                        return None
                notification_id = self._insert_for(row).run(cursor, row)
                if record_id is not None:
                    answer = receipt([queued(notification_id, connection)])
                    self.record_answer.run(
                        cursor, idempotency.answer_values(record_id, ACCEPTED, answer)
                    )
                return notification_id
            finally:
                cursor.close()

        try:
            if self.committer is None:
                with self.engine.begin() as transaction:
                    notification_id = write(transaction)
            else:
                notification_id = self.committer().run(write)
        except Exception as error:  # noqa: BLE001 - the general path answers (module docstring)
            log.warning("fast accept: write failed (%s); the general path answers", error)
            return None
        return None if notification_id is None else queued(notification_id, connection)


def _lookup(key_hash: str, ref: int | str, now: datetime) -> dict[str, Any]:
    """What finds the key and the connection ``ref`` names (both PostgreSQL's statement and
    SQLite's read take it): the key's hash, the last use recent enough not to be recorded,
    and the ref as an id and as a label."""
    return {
        "key_hash": key_hash,
        "fresh_after": now - TOUCH_INTERVAL,
        "id": ref_id(ref),
        "label": ref if isinstance(ref, str) else None,
    }
