"""The ledger of LINE units: what each accepted notification costs, by billing month, chat,
token, connected service and person (``relay_line_usage``, issue 15).

A row is written in the transaction that accepts the Notify call, so that the budgets
(``budgets.py``) count what is queued as well as what LINE has taken, and follows its push:

* channel mode: ``reserved`` when queued; ``spent`` when LINE accepted the push (its units
  re-priced then, from the member count the push job read); ``refunded`` when the push failed
  (LINE counts nothing it refused) or rode along in another push (packing: the pack is
  charged once, on its first push);
* sandbox mode: ``spent`` at once (the inbox row is the delivery).

Beside the rows, the month's running totals (``relay_line_totals``): what counts for the
channel, each person and each token, and what the channel still has reserved. Every write of
a row here changes them in the same transaction, so the budgets read a figure with one lookup
(:func:`totals`) instead of summing the month's rows on every Notify call; the admin's
tables of top spenders (:func:`top`) still read the rows. Totals are written in the order of
their subjects, which always starts with "channel": two transactions never hold each
other's totals on PostgreSQL.

Every function works in the caller's transaction and does not commit. The two writes every
Notify call makes (:func:`record`'s row and its totals) run as statements compiled once
(:mod:`notify_site.prepared`): built and executed through the Session they were about a third
of the relay's work per call (bench/README.md, "Issue 18, sixth round").
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, bindparam, delete, func, or_, select, update

from notify_site.extensions import db
from notify_site.on_conflict import insert_for
from notify_site.prepared import PreparedCache, session_cursor
from notify_site.relay.quota_models import RelayLineTotal, RelayLineUsage, UsageState

#: The totals' subjects for the whole channel: what counts, and what is still reserved.
CHANNEL = "channel"
CHANNEL_RESERVED = "channel:reserved"


def person_subject(person_id: int) -> str:
    return f"person:{person_id}"


def token_subject(token_pk: int) -> str:
    return f"token:{token_pk}"


def subjects_of(state: str, token_pk: int | None, person_id: int | None) -> list[str]:
    """The totals a row in ``state`` counts in (none for a refunded row), in lock order."""
    if state not in UsageState.COUNTED:
        return []
    found = [CHANNEL]
    if state == UsageState.RESERVED:
        found.append(CHANNEL_RESERVED)
    if person_id is not None:
        found.append(person_subject(person_id))
    if token_pk is not None:
        found.append(token_subject(token_pk))
    return found


def record(
    *,
    month: str,
    chat_id: int,
    units: int,
    state: str,
    token_pk: int | None = None,
    client_pk: int | None = None,
    person_id: int | None = None,
    push_id: int | None = None,
) -> None:
    """Write one notification's row and add its units to the month's totals."""
    values = {
        "month": month,
        "chat_id": chat_id,
        "token_pk": token_pk,
        "client_pk": client_pk,
        "person_id": person_id,
        "push_id": push_id,
        "units": units,
        "state": state,
    }
    with session_cursor(db.session) as cursor:
        cursor.run(_PREPARED.get("record", cursor.dialect, lambda: _RECORD, list(values)), values)
    _add(month, dict.fromkeys(subjects_of(state, token_pk, person_id), units))


def settle(push_ids: list[int], state: str, units: int | None = None) -> None:
    """Mark the ledger rows of ``push_ids`` ``state`` (and re-price them to ``units``)."""
    if not push_ids:
        return
    changes: defaultdict[str, defaultdict[str, int]] = defaultdict(lambda: defaultdict(int))
    rows = db.session.execute(
        select(
            RelayLineUsage.month,
            RelayLineUsage.state,
            RelayLineUsage.units,
            RelayLineUsage.token_pk,
            RelayLineUsage.person_id,
        ).where(RelayLineUsage.push_id.in_(push_ids))
    ).all()
    for month, was, had, token_pk, person_id in rows:
        for subject in subjects_of(was, token_pk, person_id):
            changes[month][subject] -= had
        for subject in subjects_of(state, token_pk, person_id):
            changes[month][subject] += had if units is None else units
    values: dict[str, Any] = {"state": state}
    if units is not None:
        values["units"] = units
    db.session.execute(
        update(RelayLineUsage)
        .where(RelayLineUsage.push_id.in_(push_ids))
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    for month in sorted(changes):
        _add(month, changes[month])


_PREPARED = PreparedCache()
_RECORD = RelayLineUsage.__table__.insert()
_totals = RelayLineTotal.__table__


def _upsert(dialect: str, count: int) -> Any:
    """``INSERT … ON CONFLICT DO UPDATE`` adding ``count`` subjects' units to one month (the
    ``units_<n>`` and ``subject_<n>`` parameters, in lock order)."""
    insert = insert_for(dialect, _totals)
    month = bindparam("month", type_=_totals.c.month.type)
    rows = [
        {
            "month": month,
            "subject": bindparam(f"subject_{n}", type_=_totals.c.subject.type),
            "units": bindparam(f"units_{n}", type_=_totals.c.units.type),
        }
        for n in range(count)
    ]
    insert = insert.values(rows)
    return insert.on_conflict_do_update(
        index_elements=["month", "subject"],
        set_={"units": _totals.c.units + insert.excluded.units},
    )


def _add(month: str, changes: dict[str, int]) -> None:
    """Add ``changes`` (units by subject) to ``month``'s totals, in one statement."""
    rows = [(subject, units) for subject, units in sorted(changes.items()) if units]
    if not rows:
        return
    values: dict[str, Any] = {"month": month}
    for n, (subject, units) in enumerate(rows):
        values[f"subject_{n}"] = subject
        values[f"units_{n}"] = units
    with session_cursor(db.session) as cursor:
        dialect = cursor.dialect.name
        upsert = _PREPARED.get(
            ("add", len(rows)), cursor.dialect, lambda: _upsert(dialect, len(rows))
        )
        cursor.run(upsert, values)


def _totals_read(count: int) -> Select:
    """The running totals of ``count`` subjects (``subject_<n>``) of one month."""
    return select(RelayLineTotal.subject, RelayLineTotal.units).where(
        RelayLineTotal.month == bindparam("month"),
        or_(
            *(
                RelayLineTotal.subject
                == bindparam(f"subject_{n}", type_=RelayLineTotal.subject.type)
                for n in range(count)
            )
        ),
    )


def totals(month: str, subjects: Iterable[str]) -> dict[str, int]:
    """``month``'s running totals of ``subjects`` (0 for a subject with none yet): every
    Notify call reads them, so the read is prepared, one statement per number of subjects."""
    wanted = list(subjects)
    if not wanted:
        return {}
    values: dict[str, Any] = {"month": month}
    for n, subject in enumerate(wanted):
        values[f"subject_{n}"] = subject
    with session_cursor(db.session) as cursor:
        read = _PREPARED.get(
            ("totals", len(wanted)), cursor.dialect, lambda: _totals_read(len(wanted))
        )
        found = dict(cursor.rows(read, values))
    return {subject: int(found.get(subject, 0)) for subject in wanted}


@dataclass(frozen=True)
class LedgerLine:
    key: int | None
    units: int


def top(month: str, column: Any, limit: int = 5) -> list[LedgerLine]:
    """The ``limit`` biggest spenders of ``month`` by ``column`` (chat, token, client)."""
    total = func.sum(RelayLineUsage.units)
    rows = db.session.execute(
        select(column, total.label("units"))
        .where(RelayLineUsage.month == month, RelayLineUsage.state.in_(UsageState.COUNTED))
        .group_by(column)
        .having(total > 0)
        .order_by(total.desc())
        .limit(limit)
    ).all()
    return [LedgerLine(row[0], int(row[1])) for row in rows]


def forget_person(person_id: int, chats: Select, token_pks: Select) -> None:
    """Before a person's sandbox ``chats`` and tokens (``token_pks``) are deleted with their
    account (``chats.forget_person``): their rows in those chats leave the channel's totals
    (they go with the chats), and nothing of theirs stays under an id that a new account or
    token may be given later (SQLite reuses the highest row id): their person and token totals
    go, and their rows in LINE chats, which stay, no longer name them."""
    gone = db.session.execute(
        select(RelayLineUsage.month, RelayLineUsage.state, func.sum(RelayLineUsage.units))
        .where(RelayLineUsage.chat_id.in_(chats), RelayLineUsage.state.in_(UsageState.COUNTED))
        .group_by(RelayLineUsage.month, RelayLineUsage.state)
    ).all()
    changes: defaultdict[str, defaultdict[str, int]] = defaultdict(lambda: defaultdict(int))
    for month, state, units in gone:
        for subject in subjects_of(state, None, None):
            changes[month][subject] -= int(units)
    for month in sorted(changes):
        _add(month, changes[month])
    tokens = [token_subject(pk) for pk in db.session.scalars(token_pks)]
    db.session.execute(
        delete(RelayLineTotal).where(
            RelayLineTotal.subject.in_([person_subject(person_id), *tokens])
        )
    )
    db.session.execute(
        update(RelayLineUsage)
        .where(RelayLineUsage.person_id == person_id)
        .values(person_id=None)
        .execution_options(synchronize_session=False)
    )
