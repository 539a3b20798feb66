"""Moving every stored secret to the newest token key (SPEC 4.6, ``flask rotate-keys``).

Shared plumbing: the columns are the ones each house declared with
:func:`notify_site.keyring.add_encrypted_column` (the site: connection tokens, OAuth state
verifiers, new API keys waiting to be shown, in ``services/encrypted_columns.py``; the relay:
its v2.1 LINE channel tokens, in ``relay/__init__.py``). An old key can only be dropped from
the ring once *nothing* is under it, so every column moves, short-lived values too.

Rotation works in batches, each its own transaction, in key order. A value is rewritten only
if it still holds the ciphertext that was read (compare-and-set), so a connection revoked
meanwhile (its ciphertext emptied) is left alone, and the live site never races the rotation.
Stopping at any point loses nothing: every committed batch is done, and the next run selects
only what is still under another key. Values that cannot be read — their key id missing from
the ring, or their ciphertext damaged — are skipped, counted and reported by key id; they are
never rewritten and never read with another key.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, bindparam, func, select, update

from notify_site.crypto import KeyRing, KeyRingError, MissingKeyError
from notify_site.extensions import db
from notify_site.keyring import EncryptedColumn, encrypted_columns

DEFAULT_BATCH_SIZE = 500
# A batch's keys are bound as parameters of one statement; drivers cap how many there may be.
MAX_BATCH_SIZE = 10_000
# How many row keys a report lists per key id; the count is always complete.
SAMPLE_ROWS = 10
# Where values that are not "<key-id>$<token>" at all are counted.
MALFORMED = "(malformed)"


@dataclass
class Unreadable:
    """Values of one column under one key id that could not be rotated."""

    count: int = 0
    rows: list[str] = field(default_factory=list)
    reason: str = ""

    def add(self, row_key: Any, reason: str) -> None:
        self.count += 1
        self.reason = self.reason or reason
        if len(self.rows) < SAMPLE_ROWS:
            self.rows.append(str(row_key))


@dataclass
class RotationResult:
    """What one run did."""

    rotated: int = 0
    # Rows whose value changed between the read and the write (e.g. revoked meanwhile).
    changed_meanwhile: int = 0
    batches: int = 0
    # True when the run stopped at ``max_batches`` with values still to do.
    stopped_early: bool = False
    # (column label, key id) -> the values that could not be read.
    unreadable: dict[tuple[str, str], Unreadable] = field(default_factory=dict)

    @property
    def unreadable_count(self) -> int:
        return sum(item.count for item in self.unreadable.values())

    def _unreadable(self, label: str, key_id: str) -> Unreadable:
        return self.unreadable.setdefault((label, key_id), Unreadable())


class _StopRotation(Exception):
    """Raised inside :func:`rotate` when ``max_batches`` is reached."""


def _not_on_primary(column: EncryptedColumn, ring: KeyRing) -> ColumnElement[bool]:
    prefix = ring.primary_key_id + "$"
    # Empty is a revoked connection: nothing to rotate.
    return (column.value != "") & ~column.value.startswith(prefix, autoescape=True)


def pending_count(ring: KeyRing) -> int:
    """How many stored values are not under the primary key (readable or not)."""
    total = 0
    for column in encrypted_columns():
        total += db.session.scalar(
            select(func.count())
            .select_from(column.value.class_)
            .where(_not_on_primary(column, ring))
        )
    db.session.rollback()
    return total


def remaining_by_key(ring: KeyRing) -> dict[str, Counter[str]]:
    """For each column, how many values are under each key id other than the primary.

    A value whose ciphertext is not even in the ``<key-id>$<token>`` form is counted under
    :data:`MALFORMED`.
    """
    report: dict[str, Counter[str]] = {}
    for column in encrypted_columns():
        counts: Counter[str] = Counter()
        rows = db.session.execute(
            select(column.value)
            .where(_not_on_primary(column, ring))
            .execution_options(yield_per=1000)
        )
        for (value,) in rows:
            try:
                counts[ring.key_id_of(value)] += 1
            except KeyRingError:
                counts[MALFORMED] += 1
        report[column.label] = counts
    db.session.rollback()
    return report


def rotate(
    ring: KeyRing,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    max_batches: int | None = None,
    on_batch: Callable[[int], None] | None = None,
) -> RotationResult:
    """Re-encrypt every readable value under ``ring``'s primary key, a batch at a time.

    ``on_batch`` is called after each committed batch with the number of values it handled
    (for a progress bar). ``max_batches`` stops the run after that many batches; running again
    carries on where it stopped. Unreadable values are reported in the result, not raised.
    """
    if not 1 <= batch_size <= MAX_BATCH_SIZE:
        raise ValueError(f"batch_size must be from 1 to {MAX_BATCH_SIZE}")
    result = RotationResult()
    try:
        for column in encrypted_columns():
            _rotate_column(ring, column, result, batch_size, max_batches, on_batch)
    except _StopRotation:
        result.stopped_early = True
    finally:
        # A batch cut short (an exception, Ctrl-C) is rolled back whole; earlier ones stay.
        db.session.rollback()
    return result


def _rotate_column(
    ring: KeyRing,
    column: EncryptedColumn,
    result: RotationResult,
    batch_size: int,
    max_batches: int | None,
    on_batch: Callable[[int], None] | None,
) -> None:
    last_key = None
    while True:
        query = select(column.row_key, column.value).where(_not_on_primary(column, ring))
        if last_key is not None:
            query = query.where(column.row_key > last_key)
        rows = db.session.execute(query.order_by(column.row_key).limit(batch_size)).all()
        if not rows:
            return
        if max_batches is not None and result.batches >= max_batches:
            raise _StopRotation
        rewrites = []
        for row_key, old in rows:
            try:
                new = ring.rotate(old, context=column.context(row_key))
            except MissingKeyError as error:
                result._unreadable(column.label, error.key_id).add(row_key, str(error))
                continue
            except KeyRingError as error:
                key_id = _key_id_or_malformed(ring, old)
                result._unreadable(column.label, key_id).add(row_key, str(error))
                continue
            rewrites.append({"b_key": row_key, "b_old": old, "b_new": new})
        if rewrites:
            _write_batch(ring, column, rewrites, result)
        db.session.commit()
        result.batches += 1
        last_key = rows[-1][0]
        if on_batch is not None:
            on_batch(len(rows))


def _write_batch(
    ring: KeyRing, column: EncryptedColumn, rewrites: list[dict], result: RotationResult
) -> None:
    """Compare-and-set every rewrite in one executemany, then count what took."""
    table = column.value.class_.__table__
    key_col, value_col = table.c[column.row_key.key], table.c[column.value.key]
    values = {value_col.key: bindparam("b_new")}
    values.update({kept.key: table.c[kept.key] for kept in column.preserve})
    db.session.execute(
        update(table)
        .where(key_col == bindparam("b_key"), value_col == bindparam("b_old"))
        .values(values),
        rewrites,
    )
    # executemany's rowcount is not reliable on every driver: count the rows now on the
    # primary key instead. The rest changed between the read and the write.
    keys = [item["b_key"] for item in rewrites]
    done = db.session.scalar(
        select(func.count())
        .select_from(table)
        .where(key_col.in_(keys), value_col.startswith(ring.primary_key_id + "$", autoescape=True))
    )
    result.rotated += done
    result.changed_meanwhile += len(rewrites) - done


def _key_id_or_malformed(ring: KeyRing, ciphertext: str) -> str:
    try:
        return ring.key_id_of(ciphertext)
    except KeyRingError:
        return MALFORMED
