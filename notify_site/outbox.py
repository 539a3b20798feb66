"""The outbox machinery both houses use: leases, fenced finishes, backoff, giving up.

The site's delivery (:mod:`notify_site.services.delivery`) and the relay's LINE pushes
(:mod:`notify_site.relay.line.push`) are the same kind of thing: rows written in the
transaction that accepted the work, taken by one worker at a time, and finished once. What
they share lives here, as small pieces each caller composes over its own tables:

* :class:`RetryPolicy` — pure: full-jitter exponential backoff, capped, and the give-up rule
  (too many attempts, or too old). Each house reads its own from configuration
  (:meth:`RetryPolicy.from_config`: ``DELIVERY_*`` for the site, ``RELAY_LINE_*`` for the
  relay).
* :class:`Lease` — a table's lease columns (a fencing token and an expiry): take rows with a
  conditional UPDATE under a fresh token, renew them, and finish or give them back **only
  while they still carry that token**. A worker whose lease ran out, and whose rows another
  worker has taken since, cannot overwrite the newer attempt. The lease may sit on the queued
  rows themselves (notifications, pushes) or on what groups them (a connection; next, a
  paused LINE channel).
* :class:`Outbox` — a queue table: its lease, its status column with the states that wait for
  a call, and the time each row is due (a retry's backoff, and next a scheduled send's time).
* :func:`retrying` — repeats one short fenced step while the database is away, for as long
  as the lease lasts, so that a database restart costs neither an answer received nor a wait.

No transaction is ever held open across a call to a remote server: every step here is a short
statement in the caller's transaction, and the caller commits. This module knows neither
house's models; it is handed their columns.
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import and_, bindparam, or_, update
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.sql.elements import ClauseElement, ColumnElement

from notify_site.db_types import utcnow
from notify_site.extensions import db
from notify_site.prepared import PreparedCache, session_cursor

log = logging.getLogger(__name__)

#: How often a step is tried again while the database does not answer (:func:`retrying`).
DATABASE_RETRY_SECONDS = 0.5

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """Full-jitter exponential backoff (delay drawn uniformly from 0 to base·2ⁿ⁻¹, capped) and
    when to give up.

    The site's base is large enough that a thousand rows failing together come back spread
    over many seconds rather than in one burst (reliability.md: < 10 % in any one second).
    Failing a thousand rows takes the workers seconds itself, and the retries that fall due
    meanwhile wait behind that wave and then go out together; with 15 s that was 10–13 % of
    them in one second at the server (`make chaos`), with 60 s about 6 %.
    """

    base_seconds: float = 60.0
    cap_seconds: float = 900.0
    max_attempts: int = 8
    max_age: timedelta = timedelta(hours=24)
    # When a rate-limited answer says no time to come back, wait this long before looking again.
    rate_limit_fallback_seconds: float = 60.0

    @classmethod
    def from_config(cls, config: Mapping[str, Any], prefix: str) -> RetryPolicy:
        """The policy under ``<prefix>_RETRY_BASE``, ``_RETRY_CAP``, ``_MAX_ATTEMPTS`` and
        ``_MAX_AGE_HOURS`` (``DELIVERY`` for the site, ``RELAY_LINE`` for the relay)."""
        return cls(
            base_seconds=float(config[f"{prefix}_RETRY_BASE"]),
            cap_seconds=float(config[f"{prefix}_RETRY_CAP"]),
            max_attempts=int(config[f"{prefix}_MAX_ATTEMPTS"]),
            max_age=timedelta(hours=float(config[f"{prefix}_MAX_AGE_HOURS"])),
        )

    def backoff(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        ceiling = min(self.cap_seconds, self.base_seconds * 2 ** max(attempt - 1, 0))
        return (rng or random).uniform(0, ceiling)  # noqa: S311 - jitter, not a secret

    def gives_up(self, attempts: int, created_at: datetime, now: datetime) -> bool:
        """True once ``attempts`` attempts are spent, or the row is ``max_age`` old."""
        return attempts >= self.max_attempts or now - created_at >= self.max_age

    def retry_at(
        self,
        attempts: int,
        created_at: datetime,
        now: datetime,
        rng: random.Random | None = None,
    ) -> datetime | None:
        """When to try again after ``attempts`` failed attempts; None when it is time to give
        up instead."""
        if self.gives_up(attempts, created_at, now):
            return None
        return now + timedelta(seconds=self.backoff(attempts, rng))


def new_token() -> str:
    """A fresh fencing token: one per claim."""
    return str(uuid.uuid4())


@dataclass(frozen=True)
class Lease:
    """The lease columns of one table: ``key`` (its primary key), ``token`` (the fencing
    token of whoever holds the row) and ``expires`` (when the hold lapses).

    Every method is one conditional UPDATE in the caller's transaction (nothing commits here)
    and returns how many rows it changed, so that the caller knows whether it still holds
    what it thinks it holds.
    """

    key: Any
    token: Any
    expires: Any
    #: The statements of :meth:`_update_held`, by the columns they write (a handful each).
    _statements: PreparedCache = field(
        default_factory=PreparedCache, init=False, repr=False, compare=False
    )

    def free(self, now: datetime) -> ColumnElement[bool]:
        """Rows nobody holds: never leased, or their lease has run out."""
        return or_(self.expires.is_(None), self.expires < now)

    def held_by(self, token: str) -> ColumnElement[bool]:
        return self.token == token

    def take(
        self,
        *where: ColumnElement[bool],
        token: str,
        now: datetime,
        duration: timedelta,
        values: Mapping[str, Any] | None = None,
    ) -> int:
        """Lease the free rows matching ``where`` to ``token`` until ``now + duration``,
        writing ``values`` with it; returns the rows taken (0: someone else was first)."""
        return self._update(
            and_(*where, self.free(now)),
            {
                **(values or {}),
                self.token.key: token,
                self.expires.key: now + duration,
            },
        )

    def renew(self, *where: ColumnElement[bool], token: str, until: datetime) -> int:
        """Push the lease of the rows still held by ``token`` forward to ``until``."""
        return self._update(and_(*where, self.held_by(token)), {self.expires.key: until})

    def touch(self, key: Any, token: str, values: Mapping[str, Any]) -> bool:
        """Write ``values`` on one row, keeping the lease, only if ``token`` still holds it.

        Also a way to *check* the hold under the row's lock: the UPDATE waits for a
        concurrent claim of the row to commit, and then no longer matches.
        """
        return self._update_held(key, token, values, ()) == 1

    def release(
        self,
        *where: ColumnElement[bool],
        token: str,
        values: Mapping[str, Any] | None = None,
    ) -> int:
        """Give back the rows matching ``where`` that ``token`` still holds, writing
        ``values``; rows another claim took since are left alone (the fence)."""
        return self._update(
            and_(*where, self.held_by(token)),
            {**(values or {}), self.token.key: None, self.expires.key: None},
        )

    def finish(
        self,
        key: Any,
        token: str,
        values: Mapping[str, Any],
        increment: Collection[str] = (),
    ) -> bool:
        """The fenced finish of one row: write its outcome and let it go, if ``token`` still
        holds it; the columns named in ``increment`` go up by one. False when the fence
        refused: the lease was lost and the row is another claim's, whose attempt is newer."""
        released = {**values, self.token.key: None, self.expires.key: None}
        return self._update_held(key, token, released, tuple(increment)) == 1

    def _update_held(
        self, key: Any, token: str, values: Mapping[str, Any], increment: tuple[str, ...]
    ) -> int:
        """UPDATE the row ``key`` if ``token`` holds it: the one-row fenced write a worker
        makes around every call (:meth:`touch`, :meth:`finish`).

        The statement is built and compiled once per set of columns written and dialect, then
        only bound and run on the Session's DB-API cursor (:mod:`notify_site.prepared`), in
        its transaction: building and keying an UPDATE each time, then SQLAlchemy's execution
        around it, were most of its cost (bench/README.md). Only plain values are bound; a SQL
        expression among the values (``increment`` covers the one the workers need) makes a
        statement of its own, built for that call alone.
        """
        if any(isinstance(value, ClauseElement) for value in values.values()):
            sets = {**values, **{name: self.key.table.c[name] + 1 for name in increment}}
            return self._update(and_(self.key == key, self.held_by(token)), sets)
        shape = (tuple(sorted(values)), increment)

        def build() -> Any:
            # The table's own columns, not the model's attributes: a statement that names
            # those is run through the ORM's bulk-update path on every execution.
            columns = self.key.table.c
            row_key, held_by = columns[self.key.key], columns[self.token.key]
            sets: dict[str, Any] = {
                name: bindparam(f"set_{name}", type_=columns[name].type) for name in shape[0]
            }
            sets.update({name: columns[name] + 1 for name in increment})
            return (
                update(self.key.table)
                .where(
                    row_key == bindparam("held_key", type_=row_key.type),
                    held_by == bindparam("held_token", type_=held_by.type),
                )
                .values(sets)
            )

        params = {f"set_{name}": value for name, value in values.items()}
        params.update(held_key=key, held_token=token)
        with session_cursor(db.session) as cursor:
            return cursor.rowcount(self._statements.get(shape, cursor.dialect, build), params)

    def _update(self, where: ColumnElement[bool], values: dict[str, Any]) -> int:
        # An UPDATE of the table rather than of the model (these never touched the session's
        # objects: synchronize_session was off). Conditions that name model attributes still
        # take SQLAlchemy's ORM path; the hot one-row writes avoid that (_update_held). Values
        # are keyed by column name, which every leased model keeps equal to its attribute name.
        return db.session.execute(update(self.key.table).where(where).values(**values)).rowcount


@dataclass(frozen=True)
class Outbox:
    """A queue table: its :class:`Lease`, its ``status`` column, the states in ``waiting``
    that still want a call, and ``due_at``, the time a row may be called (its backoff)."""

    lease: Lease
    status: Any
    waiting: Collection[str]
    due_at: Any

    def due(self, now: datetime) -> ColumnElement[bool]:
        """Rows that may be claimed: waiting, due, and not under a live lease (a row whose
        worker died is due again once its lease has run out)."""
        return and_(self.status.in_(list(self.waiting)), self.due_at <= now, self.lease.free(now))

    def claim(
        self,
        *where: ColumnElement[bool],
        token: str,
        now: datetime,
        duration: timedelta,
        values: Mapping[str, Any] | None = None,
    ) -> int:
        """Lease the due rows matching ``where`` to ``token``; returns how many were taken."""
        return self.lease.take(
            *where,
            self.status.in_(list(self.waiting)),
            self.due_at <= now,
            token=token,
            now=now,
            duration=duration,
            values=values,
        )


def retrying(
    step: Callable[..., T],
    until: datetime,
    *args: Any,
    on_failure: Callable[[], None] | None = None,
    **kwargs: Any,
) -> T:
    """Run ``step`` (one short transaction of a claim), again while the database is away.

    A database that goes away for a moment (a restart, a failover) must not cost what a call
    learned: the server's answer would be lost, the row sent again once its lease ran out, and
    everything the claim held would wait for the lease. Every step of a claim is fenced by its
    token, so repeating one is safe; it is repeated until ``until`` (the claim's lease: after
    that the rows may be someone else's, and the fence would refuse the write anyway).
    ``on_failure`` is called on each failure (a metric).
    """
    failures = 0
    while True:
        try:
            return step(*args, **kwargs)
        except DBAPIError as error:
            # OperationalError is the database being away; any other class of error counts
            # too when SQLAlchemy found the connection gone (a driver may call a dropped
            # connection an InterfaceError or a ProgrammingError).
            if not (isinstance(error, OperationalError) or error.connection_invalidated):
                raise
            db.session.rollback()
            if utcnow() + timedelta(seconds=DATABASE_RETRY_SECONDS) >= until:
                raise
            if not failures:
                log.warning(
                    "database unavailable in %s (%s); trying again until %s",
                    getattr(step, "__name__", "a step"),
                    type(error.orig).__name__,
                    until.isoformat(timespec="seconds"),
                )
            failures += 1
            if on_failure is not None:
                on_failure()
            time.sleep(DATABASE_RETRY_SECONDS)
