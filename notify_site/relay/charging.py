"""Charging a notification to LINE's monthly quota as it is accepted (issue 15): its price
(``line/cost.py``), the budgets' check (``budgets.py``) and its ledger row (``ledger.py``),
in the transaction of ``service.deliver_notification``.

What is charged: in channel mode, a notification to a LINE chat (a push); in sandbox mode,
every notification, priced as LINE would price it (sandbox parity: a fresh ``make run`` shows
the ledger, budgets and 429s). A sandbox chat in channel mode costs nothing real and is not
charged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from notify_site.extensions import db
from notify_site.relay import budgets, ledger
from notify_site.relay.line.channel import current_settings
from notify_site.relay.line.cost import (
    needs_count,
    read_member_count,
    units_for,
)
from notify_site.relay.models import RelayChat
from notify_site.relay.quota_models import UsageState


@dataclass(frozen=True)
class Price:
    """What a notification will cost and the budgets it counts against, worked out before its
    transaction writes anything (:func:`price`): reads only, kept out of SQLite's write lock."""

    units: int
    #: True in channel mode (units reserved until LINE takes the push).
    pushed: bool
    budgets: budgets.Budgets


@dataclass(frozen=True)
class Charge:
    month: str
    units: int
    #: True in channel mode (units reserved until LINE takes the push).
    pushed: bool
    #: Every budget the units count against, as it stands once they are spent.
    figures: tuple[budgets.QuotaFigures, ...] = ()


def price(
    *,
    token_pk: int,
    person_id: int | None,
    chat_id: int,
    config: Mapping[str, Any],
    now: datetime,
) -> Price | None:
    """Price the notification and read its budgets; None when it is not charged. Reads a
    group's member count from LINE only if it was never read."""
    settings = current_settings()
    chat = db.session.get(RelayChat, chat_id)
    pushed = settings is not None and chat.line_id is not None
    if settings is not None and not pushed:
        return None
    if pushed and chat.member_count is None and needs_count(chat, now):
        read_member_count(settings, chat, now)
    return Price(
        units_for(chat, config), pushed, budgets.budgets_for(token_pk, person_id, config, now)
    )


def admit(price: Price | None, config: Mapping[str, Any]) -> Charge | None:
    """Check the budgets (raises BudgetExceededError) in the caller's transaction, after its
    first write: what the month has used is read under the lock that serialises the checks."""
    if price is None:
        return None
    after = budgets.admit(price.budgets, price.units, config)
    return Charge(price.budgets.month, price.units, price.pushed, tuple(after))


def record(
    charge: Charge | None,
    *,
    chat_id: int,
    token_pk: int,
    client_pk: int | None,
    person_id: int | None,
    push_id: int | None,
) -> None:
    """Write the notification's ledger row (no commit)."""
    if charge is None:
        return
    ledger.record(
        month=charge.month,
        chat_id=chat_id,
        units=charge.units,
        state=UsageState.RESERVED if charge.pushed else UsageState.SPENT,
        token_pk=token_pk,
        client_pk=client_pk,
        person_id=person_id,
        push_id=push_id,
    )
