"""Statements compiled once and run on a DB-API cursor: the hot writes, without SQLAlchemy's
per-execution machinery.

A statement executed through a Session costs ~80 µs of Python on this project's machines
(cache key, compiled-cache lookup, execution context, result set-up) around ~15 µs of work in
the driver. Where a statement runs on every request or every delivery — the API's fast accept
(services/fast_accept.py), a worker's fenced finish and its next attempt (outbox.py,
services/attempts.py), the relay's sandbox call (its rate window, inbox row, ledger row and
running totals: relay/ratelimit.py, relay/service.py, relay/ledger.py) — it is compiled here
once per database dialect and then only bound:
its parameters go through the bind processors SQLAlchemy compiled for it, and an INSERT's
Python-side column defaults are applied as SQLAlchemy would apply them.

Running on the cursor of the Session's own connection (:func:`session_cursor`) keeps the
statement inside the Session's transaction: it commits or rolls back with it, the
engine's cursor events still fire for it, and a driver's error comes out as SQLAlchemy's
(the connection invalidated when it is gone), so callers catch what they caught before.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

#: A parameter the caller must give (a ``bindparam`` without a value of its own).
_REQUIRED = object()


class Prepared:
    """A statement compiled once for one dialect, run on a DB-API cursor.

    ``column_keys`` names the values an INSERT is given; the table's other columns with a
    Python-side default (``default=utcnow``, ``default=0``) get it at each run, as SQLAlchemy
    would give it. An UPDATE's columns with a Python-side ``onupdate`` that it does not set
    get theirs the same way.
    """

    def __init__(self, statement: Any, dialect: Dialect, column_keys: list[str] | None = None):
        compiled = statement.compile(dialect=dialect, column_keys=column_keys)
        self.sql = str(compiled)
        self.positional = compiled.positional
        defaults = {
            column.key: column.default for column in getattr(compiled, "insert_prefetch", ())
        }
        defaults.update(
            {column.key: column.onupdate for column in getattr(compiled, "update_prefetch", ())}
        )
        names = compiled.positiontup if compiled.positional else list(compiled.binds)
        # Per parameter, in order: its name, its bind processor, its column's default, and
        # the value of a literal the statement carries (``columns.attempts + 1``'s 1).
        self.plan = [
            (
                name,
                # The dialect's own type (SQLite's DATETIME writes SQLAlchemy's text format;
                # the generic DateTime has no processor, and the driver's would differ).
                compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect),
                defaults.get(name),
                _REQUIRED
                if compiled.binds[name].required
                else compiled.binds[name].effective_value,
            )
            for name in names
        ]
        # What a SELECT or a RETURNING gives back, turned into Python values by each column's
        # type as SQLAlchemy's result would turn them (SQLite's text into a datetime, the
        # project's UTC datetimes given their zone); None where the driver's value is kept.
        self.result = [
            column.type.dialect_impl(dialect).result_processor(dialect, None)
            for column in getattr(statement, "exported_columns", ())
        ]

    def parameters(self, values: dict[str, Any]) -> Any:
        """The DB-API parameters for ``values`` (a sequence or a mapping, as the driver
        takes them). SQLAlchemy's processors pass None through, so None is not processed."""
        out = []
        for name, processor, default, literal in self.plan:
            if default is None:
                value = values[name] if literal is _REQUIRED else values.get(name, literal)
            else:
                value = default.arg(None) if default.is_callable else default.arg
            if processor is not None and value is not None:
                value = processor(value)
            out.append(value)
        if self.positional:
            return out
        return {name: value for (name, *_), value in zip(self.plan, out, strict=True)}

    def run(self, cursor: Any, values: dict[str, Any]) -> Any:
        """Execute with ``values``; the first column of the first row returned (None: none)."""
        cursor.execute(self.sql, self.parameters(values))
        if cursor.description is None:  # no rows to return (an UPDATE)
            return None
        row = cursor.fetchone()
        return None if row is None else row[0]

    def row(self, cursor: Any, values: dict[str, Any]) -> tuple | None:
        """Execute with ``values``; the first row returned, read through the columns' result
        processors (:meth:`SessionCursor.row`'s reading), or None."""
        cursor.execute(self.sql, self.parameters(values))
        found = cursor.fetchone()
        return None if found is None else _processed(self, found)


class PreparedCache:
    """Statements by a key of the caller's and the dialect they are compiled for.

    Module-level statements serve every app of a process (tests build many, on SQLite and on
    PostgreSQL), so the dialect is part of the key: its name and driver decide the SQL and
    the bind processors.
    """

    def __init__(self) -> None:
        self._prepared: dict[tuple, Prepared] = {}
        self._lock = threading.Lock()

    def get(
        self,
        key: Hashable,
        dialect: Dialect,
        build: Callable[[], Any],
        column_keys: list[str] | None = None,
    ) -> Prepared:
        """The statement ``build()`` makes, compiled for ``dialect`` (and ``column_keys``:
        :class:`Prepared`); built once per key and dialect."""
        full = (key, dialect.name, dialect.driver)
        prepared = self._prepared.get(full)
        if prepared is None:
            with self._lock:
                prepared = self._prepared.get(full)
                if prepared is None:
                    prepared = Prepared(build(), dialect, column_keys)
                    self._prepared[full] = prepared
        return prepared


class SessionCursor:
    """A DB-API cursor on a Session's connection, in its transaction, running
    :class:`Prepared` statements compiled for its :attr:`dialect`.

    The engine's ``before_cursor_execute`` and ``after_cursor_execute`` listeners still hear
    of each statement (tests that count writes, the benchmarks' timings); with none, checking
    costs one truth test.
    """

    def __init__(self, connection: Connection, cursor: Any) -> None:
        self.connection = connection
        self.cursor = cursor
        self.dialect = connection.dialect

    def run(self, prepared: Prepared, values: dict[str, Any]) -> Any:
        """:meth:`Prepared.run` on this cursor."""
        self._execute(prepared, values)
        if self.cursor.description is None:
            return None
        row = self.cursor.fetchone()
        return None if row is None else row[0]

    def row(self, prepared: Prepared, values: dict[str, Any]) -> tuple | None:
        """The first row a SELECT or a RETURNING gives back, its values turned into Python
        ones by their columns' types (as SQLAlchemy's own result turns them); None: no row."""
        self._execute(prepared, values)
        found = self.cursor.fetchone()
        return None if found is None else _processed(prepared, found)

    def rows(self, prepared: Prepared, values: dict[str, Any]) -> list[tuple]:
        """Every row a SELECT gives back, read as :meth:`row` reads one."""
        self._execute(prepared, values)
        return [_processed(prepared, found) for found in self.cursor.fetchall()]

    def rowcount(self, prepared: Prepared, values: dict[str, Any]) -> int:
        """Execute an UPDATE or DELETE; the rows it matched."""
        self._execute(prepared, values)
        return self.cursor.rowcount

    def _execute(self, prepared: Prepared, values: dict[str, Any]) -> None:
        parameters = prepared.parameters(values)
        dispatch = self.connection.dispatch
        heard = bool(dispatch.before_cursor_execute or dispatch.after_cursor_execute)
        if heard:
            dispatch.before_cursor_execute(
                self.connection, self.cursor, prepared.sql, parameters, None, False
            )
        try:
            self.cursor.execute(prepared.sql, parameters)
        except self.dialect.loaded_dbapi.Error as error:
            raise _wrapped(self.connection, self.cursor, error, prepared.sql, parameters) from error
        if heard:
            dispatch.after_cursor_execute(
                self.connection, self.cursor, prepared.sql, parameters, None, False
            )


def _processed(prepared: Prepared, found: Any) -> tuple:
    return tuple(
        value if process is None else process(value)
        for process, value in zip(prepared.result, found, strict=True)
    )


@contextmanager
def session_cursor(session: Session) -> Iterator[SessionCursor]:
    """A :class:`SessionCursor` on ``session``'s connection, in its transaction (begun if
    none was), after the Session's pending changes are flushed, as ``session.execute`` would
    flush them (a change flushed later would land after the statement, over it)."""
    if session.autoflush:
        session.flush()
    connection = session.connection()
    try:
        cursor = connection.connection.cursor()
    except connection.dialect.loaded_dbapi.Error as error:
        raise _wrapped(connection, None, error, "", None) from error
    try:
        yield SessionCursor(connection, cursor)
    finally:
        cursor.close()


def _wrapped(
    connection: Connection, cursor: Any, error: Exception, sql: str, parameters: Any
) -> DBAPIError:
    """The driver's error as SQLAlchemy raises it from ``execute`` (its own
    OperationalError, IntegrityError…, which the callers' retries catch), the connection
    invalidated first when the error says it is gone, as SQLAlchemy would do it: the pool
    then opens a new one instead of handing the dead one out again."""
    dialect = connection.dialect
    gone = dialect.is_disconnect(error, connection.connection.dbapi_connection, cursor)
    if gone:
        connection.invalidate(error)
    return DBAPIError.instance(
        sql,
        parameters,
        error,
        dialect.loaded_dbapi.Error,
        connection_invalidated=gone,
        dialect=dialect,
    )
