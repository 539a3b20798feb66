"""The month's LINE quota at a glance (issue 15): what the relay's LINE page and ``flask
relay line-check`` show, and what the site's ``/admin`` is told through a seam.

:func:`quota_overview` gathers the month-to-date units from the ledger, LINE's own limit and
consumption as last read (channel mode), a projection to the month's end, the biggest chats,
tokens and services, every budget set with its use, and the warnings (a budget or the quota
at 80 % or 100 %).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from notify_site.extensions import db
from notify_site.relay import budgets, ledger
from notify_site.relay.budgets import QuotaFigures
from notify_site.relay.line.channel import current_settings
from notify_site.relay.line.cost import billing_month, billing_zone, month_start, next_month_start
from notify_site.relay.models import RelayAccessToken, RelayChat, RelayClient, RelayLineChannel
from notify_site.relay.quota_models import BudgetScope, RelayBudget, RelayLineUsage


@dataclass(frozen=True)
class Spender:
    name: str
    units: int


@dataclass(frozen=True)
class Warning:
    """A budget (or the channel's quota) at a threshold this month."""

    figures: QuotaFigures
    #: Whose budget: "" for the channel, else a person's or token's name.
    subject: str
    threshold: int


@dataclass
class QuotaOverview:
    month: str
    channel: QuotaFigures
    projected: int
    #: LINE's limit and consumption as last read (channel mode), and when.
    line_limit: int | None = None
    line_used: int | None = None
    line_checked_at: datetime | None = None
    sandbox: bool = False
    top_chats: list[Spender] = field(default_factory=list)
    top_tokens: list[Spender] = field(default_factory=list)
    top_services: list[Spender] = field(default_factory=list)
    #: (figures, subject name, subject id) of every person's and token's budget.
    budgets: list[tuple[QuotaFigures, str, int]] = field(default_factory=list)
    warnings: list[Warning] = field(default_factory=list)


def projection(used: int, now: datetime, zone: Any) -> int:
    """Units at the month's end if the month goes on as it went so far (a straight line)."""
    start, end = month_start(now, zone), next_month_start(now, zone)
    elapsed = max((now - start).total_seconds(), 3600.0)  # the first hour says little
    return int(round(used * (end - start).total_seconds() / elapsed))


def threshold_of(figures: QuotaFigures) -> int | None:
    """The highest threshold (80, 100) the budget has reached, if any."""
    reached = [t for t in budgets.THRESHOLDS if figures.limit and figures.percent >= t]
    return max(reached) if reached else None


def _names(model: Any, name_column: Any, ids: list[int | None]) -> dict[Any, str]:
    wanted = [i for i in ids if i is not None]
    if not wanted:
        return {}
    return dict(db.session.execute(select(model.id, name_column).where(model.id.in_(wanted))).all())


def _token_names(ids: list[int | None]) -> dict[Any, str]:
    wanted = [i for i in ids if i is not None]
    if not wanted:
        return {}
    rows = db.session.execute(
        select(RelayAccessToken.id, func.coalesce(RelayAccessToken.name, RelayClient.name))
        .outerjoin(RelayClient, RelayClient.id == RelayAccessToken.client_pk)
        .where(RelayAccessToken.id.in_(wanted))
    ).all()
    return {row[0]: f"#{row[0]} {row[1]}" for row in rows}


def _spenders(lines: list[ledger.LedgerLine], names: Mapping[Any, str]) -> list[Spender]:
    return [Spender(names.get(line.key, "—"), line.units) for line in lines]


def quota_overview(
    config: Mapping[str, Any], now: datetime, person_names: Mapping[int, str] | None = None
) -> QuotaOverview:
    """Everything the LINE page shows about this month's units."""
    zone = billing_zone(config)
    month = billing_month(now, zone)
    channel = budgets.channel_figures(config, now)
    overview = QuotaOverview(month, channel, projection(channel.used, now, zone))
    settings = current_settings()
    overview.sandbox = settings is None
    if settings is not None:
        row = db.session.get(RelayLineChannel, settings.channel_id)
        if row is not None:
            overview.line_limit, overview.line_used = row.quota_limit, row.quota_used
            overview.line_checked_at = row.quota_checked_at
    chats = ledger.top(month, RelayLineUsage.chat_id)
    overview.top_chats = _spenders(chats, _names(RelayChat, RelayChat.name, [c.key for c in chats]))
    tokens = ledger.top(month, RelayLineUsage.token_pk)
    overview.top_tokens = _spenders(tokens, _token_names([t.key for t in tokens]))
    services = ledger.top(month, RelayLineUsage.client_pk)
    overview.top_services = _spenders(
        services, _names(RelayClient, RelayClient.name, [s.key for s in services])
    )
    people = person_names or {}
    token_names = _token_names(
        list(
            db.session.scalars(
                select(RelayBudget.subject_id).where(RelayBudget.scope == BudgetScope.TOKEN)
            )
        )
    )
    rows = list(
        db.session.scalars(
            select(RelayBudget)
            .where(RelayBudget.scope != BudgetScope.CHANNEL)
            .order_by(RelayBudget.scope, RelayBudget.subject_id)
        )
    )
    # Every budget's month in one read of the running totals (not two reads per budget).
    subjects = [budgets.LEDGER_SUBJECT[row.scope](row.subject_id) for row in rows]
    used = ledger.totals(month, subjects)
    for row, subject in zip(rows, subjects, strict=True):
        figures = budgets.QuotaFigures(row.scope, row.monthly_units, used[subject], channel.reset)
        if row.scope == BudgetScope.PERSON:
            name = people.get(row.subject_id, f"#{row.subject_id}")
        else:
            name = token_names.get(row.subject_id, f"#{row.subject_id}")
        overview.budgets.append((figures, name, row.subject_id))
    for figures, name in [(channel, "")] + [(f, n) for f, n, _ in overview.budgets]:
        reached = threshold_of(figures)
        if reached is not None:
            overview.warnings.append(Warning(figures, name, reached))
    return overview
