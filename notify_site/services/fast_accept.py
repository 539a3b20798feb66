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
   by :func:`~notify_site.services.sending.pick_targets`.
3. **One write**, in the process's next group commit (services/group_commit.py): claim the
   idempotency key when there is one (``INSERT … ON CONFLICT DO NOTHING RETURNING``), insert
   the row, keep the receipt as the key's answer — all in one transaction, released once it
   has committed.

   On **PostgreSQL** the write skips the group commit and runs on the fast path's own
   connections: a request without an ``Idempotency-Key`` as one ``INSERT … RETURNING`` in
   autocommit — its own transaction, committed (its WAL flushed, ``synchronous_commit`` on)
   when the statement returns; one with a key as one statement too, which claims the key
   with its answer already in it (the receipt, the row's id taken from the sequence first)
   and inserts the row — both or neither, and nothing when the key was claimed before.
   PostgreSQL already lets one WAL flush cover the commits of concurrent sessions, so handing
   the row to the writer thread only added the hand-off, a pool checkout, ``BEGIN`` and
   ``COMMIT`` round trips: measured under gunicorn 2 × 8 (bench/README.md, seventh round), the
   accept ran at ~1,800 req/s instead of ~1,330, its web process's CPU per request 0.63–0.68
   ms instead of 0.81–0.88. SQLite keeps the group commit: there every commit is a
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
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from notify_site import metrics
from notify_site.db_types import utcnow
from notify_site.notify_content import Content
from notify_site.prepared import Prepared
from notify_site.services import group_commit, idempotency, notifications
from notify_site.services.api_keys import TOUCH_INTERVAL, AuthenticatedKey, KeyOwner
from notify_site.services.fast_statements import LOOKUP, keyed_insert, queued, receipt_around_id
from notify_site.services.notifications import QueuedNotification, ResolvedConnection
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
        self.committer = committer  # None: each accept commits alone
        # PostgreSQL: each accept writes alone, in one autocommitted statement (see above).
        self.insert_alone = engine.dialect.name == "postgresql"
        self.lookup = Prepared(LOOKUP, engine.dialect)
        # Compiled for the keys of the first row it is given (notifications.queued_row's).
        self._insert: Prepared | None = None
        self._keyed: Prepared | None = None  # PostgreSQL's, compiled likewise
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

    def _keyed_for(self, row: dict[str, Any]) -> Prepared:
        """PostgreSQL's keyed write (:func:`~notify_site.services.fast_statements.keyed_insert`)
        compiled for ``row``'s keys (as :meth:`_insert_for`)."""
        if self._keyed is None:
            self._keyed = Prepared(keyed_insert(list(row)), self.engine.dialect)
        return self._keyed

    # -------------------------------------------------------------------------- the read

    def _take(self) -> Any:
        """A connection for one read: an idle one, else a new one."""
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

    def read(self, key_hash: str, ref: int | str) -> list[tuple] | None:
        """The key's row joined with each candidate connection (empty: no key or no
        candidate); None when the database failed."""
        parameters = self.lookup.parameters(
            {
                "key_hash": key_hash,
                "fresh_after": utcnow() - TOUCH_INTERVAL,
                "id": ref_id(ref),
                "label": ref if isinstance(ref, str) else None,
            }
        )

        def read(cursor: Any) -> list[tuple]:
            cursor.execute(self.lookup.sql, parameters)
            return cursor.fetchall()

        return self._on_connection("read", read)[1]

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
        rows = self.read(key_hash, ref)
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
        row = notifications.queued_row(connection, content, api_key)
        key = (
            None
            if idempotency_key is None
            else IdempotencyKey.for_request(idempotency_key, [ref], content)
        )

        def write_on(cursor: Any) -> int | None:
            record_id = None
            if key is not None:
                record_id = self.claim.run(
                    cursor, idempotency.claim_values(key_id, key.key, key.fingerprint)
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

        def write(transaction: Connection) -> int | None:
            # On the transaction's own DB-API connection: SQLAlchemy begins and commits it.
            cursor = transaction.connection.cursor()
            try:
                return write_on(cursor)
            finally:
                cursor.close()

        if self.insert_alone:
            # PostgreSQL: one statement on the fast path's own connection, in autocommit (its
            # own transaction): the row, or with a key the claim, its answer and the row.
            def alone(cursor: Any) -> int | None:
                if key is None:
                    return write_on(cursor)
                now = utcnow()
                head, tail = receipt_around_id(connection)
                return self._keyed_for(row).run(
                    cursor,
                    {
                        **row,
                        "attempts": 0,
                        "created_at": now,
                        "updated_at": now,
                        "idempotency_key": key.key,
                        "request_hash": key.fingerprint,
                        "receipt_head": head,
                        "receipt_tail": tail,
                        "claimed_at": now,
                    },
                )

            written, notification_id = self._on_connection("write", alone)
            if not written or notification_id is None:
                return None
            metrics.notifications_queued(Source.API, 1)
            return queued(notification_id, connection)
        try:
            if self.committer is None:
                with self.engine.begin() as transaction:
                    notification_id = write(transaction)
            else:
                notification_id = self.committer().run(write)
        except Exception as error:  # noqa: BLE001 - the general path answers (module docstring)
            log.warning("fast accept: write failed (%s); the general path answers", error)
            return None
        if notification_id is None:
            return None
        metrics.notifications_queued(Source.API, 1)
        return queued(notification_id, connection)
