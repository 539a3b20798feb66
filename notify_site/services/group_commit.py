"""Group commit: the writes of concurrent requests in one process share one transaction.

A 202 promises the notification is durably queued (SPEC 4.3): its commit has reached the disk
(SQLite ``synchronous=FULL``, PostgreSQL's WAL flush). One commit per request makes every
request wait for its own flush, one at a time per database. Here the request threads of a
process hand their write — a *job*: a function of the transaction's connection, usually one
INSERT … RETURNING — to one writer thread and wait; the writer takes every job waiting (those
that arrived while the previous commit ran, and any within ``window`` seconds of the first),
runs them in **one transaction, one commit**, then releases each request with its job's value
(the row's id) — so no 202 is sent before its row's commit has returned.

One bad job never fails the others: when a statement of the batch (or its commit) fails,
nothing of it was written; each job is then run again in a transaction of its own, so the bad
job's request gets its own error and the others their values. A job must therefore write
only through the connection it is given, and may run more than once (its transaction rolled
back in between).

The writer thread starts on the first row a process hands over (after gunicorn's fork) and
stops after :data:`IDLE_SECONDS` without rows.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Executable
from sqlalchemy.engine import Connection, Engine

#: The writer thread stops after this long without rows (a new one starts on demand).
IDLE_SECONDS = 5.0
#: How long a request waits for its row's commit before giving up (the database is stuck).
WAIT_SECONDS = 60.0
MAX_BATCH = 500


#: A write to share a transaction: given the transaction's connection, it returns its value.
Job = Callable[[Connection], Any]


def insert_job(statement: Executable, parameters: dict[str, Any]) -> Job:
    """A job running ``statement`` (an INSERT … RETURNING one value) with ``parameters``."""
    return lambda connection: connection.execute(statement, parameters).scalar_one()


@dataclass
class _Row:
    job: Job
    done: Future = field(default_factory=Future)


class GroupCommitter:
    """One writer thread and its queue, for one engine in one process."""

    def __init__(self, engine: Engine, window: float = 0.0) -> None:
        self.engine = engine
        self.window = window
        self.batches = 0  # transactions committed (for tests and the benchmark)
        self.rows = 0
        self._queue: queue.SimpleQueue[_Row] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._writer: threading.Thread | None = None
        self._held: Connection | None = None  # the writer thread's alone
        self._last_batch = 0

    def insert(self, statement: Executable, parameters: dict[str, Any]) -> Any:
        """Run ``statement`` (an INSERT … RETURNING one value) with ``parameters`` in the
        next group's transaction; its returned value once that transaction has committed.
        Raises what the row's INSERT or the commit raised."""
        return self.run(insert_job(statement, parameters))

    def run(self, job: Job) -> Any:
        """Run ``job`` in the next group's transaction; its value once that transaction has
        committed. Raises what the job or the commit raised."""
        row = _Row(job)
        self._queue.put(row)
        self._ensure_writer()
        return row.done.result(timeout=WAIT_SECONDS)

    def _ensure_writer(self) -> None:
        writer = self._writer
        if writer is not None and writer.is_alive():
            return
        with self._lock:
            if self._writer is None or not self._writer.is_alive():
                self._writer = threading.Thread(target=self._run, name="group-commit", daemon=True)
                self._writer.start()

    def _connection(self) -> Connection:
        """The writer's connection, held while it runs: one pool checkout (and its ping) per
        writer, not per batch."""
        if self._held is None:
            self._held = self.engine.connect()
        return self._held

    def _drop_connection(self) -> None:
        held, self._held = self._held, None
        if held is not None:
            held.invalidate()
            held.close()

    def _run(self) -> None:
        while True:
            try:
                first = self._queue.get(timeout=IDLE_SECONDS)
            except queue.Empty:
                with self._lock:
                    if self._queue.empty():
                        self._writer = None
                        if self._held is not None:
                            self._held.close()  # back to the pool while idle
                            self._held = None
                        return
                continue
            batch = [first]
            # The window is waited only under concurrency (the last batch shared its commit):
            # a lone request is not kept waiting for company that is not coming.
            window = self.window if self._last_batch > 1 else 0.0
            deadline = time.monotonic() + window
            while len(batch) < MAX_BATCH:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    try:
                        batch.append(self._queue.get(timeout=left))
                    except queue.Empty:
                        break
            self._last_batch = len(batch)
            self._write(batch)

    def _write(self, batch: list[_Row]) -> None:
        try:
            connection = self._connection()
            try:
                with connection.begin():
                    values = [row.job(connection) for row in batch]
            except Exception:
                self._drop_connection()  # a fresh one for the next batch: this one may be broken
                raise
        except Exception as error:  # noqa: BLE001 - handed to the waiting requests
            if len(batch) == 1:
                batch[0].done.set_exception(error)
                return
            for row in batch:  # find the bad row(s): each alone, in a transaction of its own
                self._write([row])
            return
        self.batches += 1
        self.rows += len(batch)
        for row, value in zip(batch, values, strict=True):
            row.done.set_result(value)


EXTENSION = "notify_site.group_commit"
_LOCK = threading.Lock()


def committer(extensions: dict[str, Any], engine: Engine, window: float = 0.0) -> GroupCommitter:
    """The app's group committer for this process (a new one after gunicorn's fork), kept in
    the app's ``extensions``."""
    pid = os.getpid()
    found = extensions.get(EXTENSION)
    if found is None or found[0] != pid or found[1].engine is not engine:
        with _LOCK:
            found = extensions.get(EXTENSION)
            if found is None or found[0] != pid or found[1].engine is not engine:
                found = extensions[EXTENSION] = (pid, GroupCommitter(engine, window))
    return found[1]
