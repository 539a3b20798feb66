"""The ledger of LINE units: what each accepted notification costs, by billing month, chat,
token, connected service and person (``relay_line_usage``, issue 15).

A row is written in the transaction that accepts the Notify call, so that the budgets
(``budgets.py``) count what is queued as well as what LINE has taken, and follows its push:

* channel mode: ``reserved`` when queued; ``spent`` when LINE accepted the push (its units
  re-priced then, from the member count the push job read); ``refunded`` when the push failed
  (LINE counts nothing it refused) or rode along in another push (packing: the pack is
  charged once, on its first push);
* sandbox mode: ``spent`` at once (the inbox row is the delivery).

Every function works in the caller's transaction and does not commit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.sql.elements import ColumnElement

from notify_site.extensions import db
from notify_site.relay.quota_models import RelayLineUsage, UsageState


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
) -> RelayLineUsage:
    row = RelayLineUsage(
        month=month,
        chat_id=chat_id,
        token_pk=token_pk,
        client_pk=client_pk,
        person_id=person_id,
        push_id=push_id,
        units=units,
        state=state,
    )
    db.session.add(row)
    return row


def settle(push_ids: list[int], state: str, units: int | None = None) -> None:
    """Mark the ledger rows of ``push_ids`` ``state`` (and re-price them to ``units``)."""
    if not push_ids:
        return
    values: dict[str, Any] = {"state": state}
    if units is not None:
        values["units"] = units
    db.session.execute(
        update(RelayLineUsage)
        .where(RelayLineUsage.push_id.in_(push_ids))
        .values(**values)
        .execution_options(synchronize_session=False)
    )


def counted(month: str, *where: ColumnElement[bool], state: str | None = None) -> int:
    """Units of ``month`` that count (reserved or spent; or only ``state``) matching ``where``."""
    states = (state,) if state else UsageState.COUNTED
    return int(
        db.session.scalar(
            select(func.coalesce(func.sum(RelayLineUsage.units), 0)).where(
                RelayLineUsage.month == month, RelayLineUsage.state.in_(states), *where
            )
        )
        or 0
    )


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
