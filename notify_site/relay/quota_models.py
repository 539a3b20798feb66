"""The relay's tables for LINE's monthly message quota (issue 15): the ledger of units spent,
budgets, and the threshold notices already sent. No business logic lives here (that is
``relay/line/cost.py``, ``relay/quota.py`` and ``relay/budgets.py``).

``relay/models.py`` imports this module at its end, so that ``import notify_site.relay.models``
(Alembic, the tests) registers every relay table.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from notify_site.db_types import UTCDateTime, utcnow
from notify_site.extensions import db


class UsageState:
    """Where a ledger row stands: units held for a queued push, spent by LINE, or given back
    (the push failed, or rode along in another push: packed)."""

    RESERVED = "reserved"
    SPENT = "spent"
    REFUNDED = "refunded"
    #: The states that count against the month and its budgets.
    COUNTED = (RESERVED, SPENT)


class RelayLineUsage(db.Model):
    """One accepted notification's units of LINE's monthly quota: the ledger.

    Written in the transaction that accepts the Notify call (``state`` reserved in channel
    mode, spent at once in the sandbox), so that budgets count what is queued as well as what
    went out, and no burst can pass a budget between two checks. ``month`` is the billing
    month (``YYYY-MM`` in ``RELAY_LINE_BILLING_TZ``, ``relay/line/cost.py``); the budget and
    ledger queries group by it and one of ``chat_id``/``token_pk``/``person_id``/``client_pk``.
    """

    __tablename__ = "relay_line_usage"
    __table_args__ = (
        Index("ix_relay_line_usage_month_chat", "month", "chat_id"),
        Index("ix_relay_line_usage_month_token", "month", "token_pk"),
        Index("ix_relay_line_usage_month_person", "month", "person_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    month: Mapped[str] = mapped_column(String(7))
    chat_id: Mapped[int] = mapped_column(ForeignKey("relay_chats.id", ondelete="CASCADE"))
    token_pk: Mapped[int | None] = mapped_column(
        ForeignKey("relay_access_tokens.id", ondelete="SET NULL")
    )
    client_pk: Mapped[int | None] = mapped_column(
        ForeignKey("relay_clients.id", ondelete="SET NULL")
    )
    # The token's person (the accounts port's id), for per-person budgets.
    person_id: Mapped[int | None]
    # Channel mode: the push these units are for (None in the sandbox, and for notices).
    push_id: Mapped[int | None] = mapped_column(
        ForeignKey("relay_pushes.id", ondelete="CASCADE"), unique=True
    )
    units: Mapped[int]
    state: Mapped[str] = mapped_column(String(10))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    def __repr__(self) -> str:
        return f"<RelayLineUsage {self.id} {self.month} {self.units} {self.state}>"


class RelayLineTotal(db.Model):
    """The ledger's running sums for one billing month: the units that count (reserved or
    spent) for the channel (``subject`` "channel"), for each person ("person:<id>") and each
    token ("token:<id>"), and the channel's units still reserved ("channel:reserved").

    ``ledger.py`` keeps them in the transaction of every ledger write, so a Notify call reads
    its budgets' figures with one lookup, however many messages the month already holds (it
    summed the month's rows on every call, under SQLite's write lock: bench/README.md). They
    count what was accepted: a chat or token deleted later does not give its units back, as
    LINE does not.
    """

    __tablename__ = "relay_line_totals"

    month: Mapped[str] = mapped_column(String(7), primary_key=True)
    subject: Mapped[str] = mapped_column(String(40), primary_key=True)
    units: Mapped[int]

    def __repr__(self) -> str:
        return f"<RelayLineTotal {self.month} {self.subject} {self.units}>"


class BudgetScope:
    CHANNEL = "channel"
    PERSON = "person"
    TOKEN = "token"  # noqa: S105 - a budget scope, not a secret


class RelayBudget(db.Model):
    """A monthly budget of LINE units an admin set: for the whole channel (``subject_id`` 0),
    a person (the accounts port's id) or one access token."""

    __tablename__ = "relay_budgets"
    __table_args__ = (UniqueConstraint("scope", "subject_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    scope: Mapped[str] = mapped_column(String(8))
    subject_id: Mapped[int]
    monthly_units: Mapped[int]
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    def __repr__(self) -> str:
        return f"<RelayBudget {self.scope}:{self.subject_id} {self.monthly_units}>"


class RelayQuotaNotice(db.Model):
    """A threshold notice sent (80 % or 100 % of the quota or of a budget): at most one per
    subject, threshold and month, by the unique constraint (an insert that conflicts is a
    notice someone already sent)."""

    __tablename__ = "relay_quota_notices"
    __table_args__ = (UniqueConstraint("month", "subject", "threshold"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    month: Mapped[str] = mapped_column(String(7))
    # "channel", "person:<id>" or "token:<id>".
    subject: Mapped[str] = mapped_column(String(40))
    threshold: Mapped[int]
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    def __repr__(self) -> str:
        return f"<RelayQuotaNotice {self.month} {self.subject} {self.threshold}>"
