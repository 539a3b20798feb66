"""Monthly budgets of LINE units, and the figures a Notify client is told (issue 15).

Three budgets may apply to a notification, each over the billing month (``line/cost.py``):

* the **channel's**: what an admin set (``relay_budgets``, scope ``channel``), else the
  monthly limit LINE reports (``relay_line_channels.quota_limit``; none when LINE says
  ``"type": "none"``), else in the sandbox ``RELAY_SANDBOX_MONTHLY_QUOTA``;
* the **person's** whose token it is, and the **token's** own, when an admin set them.

:func:`admit` runs in the transaction that accepts a Notify call, after the call's rate
window is spent and before anything is queued. A notification that would pass any budget is
refused with :class:`BudgetExceededError` (429) at once: nothing is queued and LINE is not
called. The units of every accepted notification are reserved in the ledger in the same
transaction (``ledger.py``), so a burst cannot pass a budget between two checks: on
PostgreSQL the check takes a transaction-scoped advisory lock first (concurrent calls queue
for it while the check reads the ledger's running totals); on SQLite the rate window's UPDATE
before it already made the transaction the one writer. The budgets themselves (the limits)
are read before the transaction's first write (:class:`Budgets`), out of that lock.

**Pushes already queued when a budget runs out** (an admin lowered it, or LINE's count says
the month is spent): they are delivered. Their units were reserved when they were accepted,
under the budget as it stood, and the caller was told 200; taking that back would turn a
promise into a silent drop. Only new calls are refused. (LINE's own monthly-limit 429 is a
different matter: the relay cannot push then at all, and issue 22's channel pause waits for
the quota to come back.)

The figures of the tightest budget (least remaining) travel to the client as the extension
headers ``X-LineQuota-Limit``, ``X-LineQuota-Remaining`` and ``X-LineQuota-Reset`` (epoch
seconds of the next billing month), and as ``lineQuota`` in ``/api/status``; the hourly
``X-RateLimit-*`` headers stay exactly as LINE Notify defined them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import and_, bindparam, func, or_, select, text

from notify_site.extensions import db
from notify_site.prepared import PreparedCache, session_cursor
from notify_site.relay import ledger
from notify_site.relay.errors import BudgetError, BudgetExceededError
from notify_site.relay.line.channel import current_settings
from notify_site.relay.line.cost import billing_month, billing_zone, next_month_start
from notify_site.relay.models import RelayAccessToken, RelayLineChannel
from notify_site.relay.quota_models import BudgetScope, RelayBudget

#: The advisory lock key that serialises budget checks on PostgreSQL ("LINEQUOT" in ASCII).
ADVISORY_LOCK_KEY = 0x4C494E4551554F54
#: The running total (ledger.py) a person's or a token's budget is held against.
LEDGER_SUBJECT = {
    BudgetScope.PERSON: ledger.person_subject,
    BudgetScope.TOKEN: ledger.token_subject,
}
#: The shares of a budget at which admins are warned (``notices.py``), in percent.
THRESHOLDS = (80, 100)


@dataclass(frozen=True)
class QuotaFigures:
    """One budget this month: ``limit`` None means none applies."""

    scope: str
    limit: int | None
    used: int
    reset: datetime

    @property
    def remaining(self) -> int | None:
        return None if self.limit is None else max(self.limit - self.used, 0)

    @property
    def percent(self) -> int:
        if not self.limit:
            return 0
        return int(self.used * 100 // self.limit)

    def as_json(self) -> dict[str, Any]:
        return {
            "scope": self.scope,
            "limit": self.limit,
            "used": self.used,
            "remaining": self.remaining,
            "reset": int(self.reset.timestamp()),
        }


def budget_row(scope: str, subject_id: int) -> RelayBudget | None:
    return db.session.scalar(
        select(RelayBudget).where(RelayBudget.scope == scope, RelayBudget.subject_id == subject_id)
    )


def set_budget(scope: str, subject_id: int, units: int | None, *, now: datetime) -> None:
    """Set (or, with ``units`` None, remove) a monthly budget; no commit."""
    row = budget_row(scope, subject_id)
    if units is None:
        if row is not None:
            db.session.delete(row)
        return
    if row is None:
        row = RelayBudget(scope=scope, subject_id=subject_id, monthly_units=units)
        db.session.add(row)
    row.monthly_units = units
    row.updated_at = now


def line_quota() -> tuple[int | None, int | None]:
    """LINE's monthly limit and consumption as last read (channel mode), else (None, None)."""
    settings = current_settings()
    if settings is None:
        return None, None
    row = db.session.get(RelayLineChannel, settings.channel_id)
    if row is None or row.quota_checked_at is None and row.quota_limit is None:
        return None, None
    return row.quota_limit, row.quota_used


def channel_figures(config: Mapping[str, Any], now: datetime) -> QuotaFigures:
    """The channel's budget this month: its limit and the units counted against it."""
    return figures_for(None, None, config, now)[0]


@dataclass(frozen=True)
class Budgets:
    """The budgets a token's notifications count against, as they stand this month: the
    channel's limit (with LINE's last count of the month, in channel mode) and the limits an
    admin set for the token's person and for the token itself.

    Read before a Notify call's transaction writes anything (:func:`budgets_for`), so they stay
    out of SQLite's write lock; an admin's change applies to the calls that start after it.
    What the month has used is read under the lock (:func:`figures_under`)."""

    month: str
    reset: datetime
    channel_limit: int | None
    #: LINE's own count of the month's messages as last read (channel mode), else None.
    line_used: int | None
    #: (scope, monthly units, the ledger's subject) for the person's and the token's budget.
    scoped: tuple[tuple[str, int, str], ...]


_PREPARED = PreparedCache()
#: The budgets that may apply to one notification, read at once (:func:`budgets_for`), as a
#: prepared statement (notify_site.prepared): every Notify call reads them.
_BUDGETS = select(RelayBudget.scope, RelayBudget.subject_id, RelayBudget.monthly_units).where(
    or_(
        and_(RelayBudget.scope == BudgetScope.CHANNEL, RelayBudget.subject_id == 0),
        and_(
            RelayBudget.scope == BudgetScope.PERSON, RelayBudget.subject_id == bindparam("person")
        ),
        and_(RelayBudget.scope == BudgetScope.TOKEN, RelayBudget.subject_id == bindparam("token")),
    )
)


def budgets_for(
    token_pk: int | None, person_id: int | None, config: Mapping[str, Any], now: datetime
) -> Budgets:
    """The budgets of a token's notifications this month (None leaves the person's or the
    token's out): one read of ``relay_budgets``, and in channel mode LINE's figures."""
    zone = billing_zone(config)
    with session_cursor(db.session) as cursor:
        read = _PREPARED.get("budgets", cursor.dialect, lambda: _BUDGETS)
        found = cursor.rows(read, {"person": person_id, "token": token_pk})
    limits = {(scope, subject): units for scope, subject, units in found}
    line_used = None
    if current_settings() is None:
        limit = int(config.get("RELAY_SANDBOX_MONTHLY_QUOTA", 200))
    else:
        limit, line_used = line_quota()
    scoped = tuple(
        (scope, limits[(scope, subject)], LEDGER_SUBJECT[scope](subject))
        for scope, subject in ((BudgetScope.PERSON, person_id), (BudgetScope.TOKEN, token_pk))
        if subject is not None and (scope, subject) in limits
    )
    return Budgets(
        month=billing_month(now, zone),
        reset=next_month_start(now, zone),
        channel_limit=limits.get((BudgetScope.CHANNEL, 0), limit),
        line_used=line_used,
        scoped=scoped,
    )


def figures_under(budgets: Budgets) -> list[QuotaFigures]:
    """Each of ``budgets`` with what the month has used (the channel's first): one read of the
    ledger's running totals (``ledger.totals``), whatever the month's volume."""
    used = ledger.totals(
        budgets.month,
        [ledger.CHANNEL, ledger.CHANNEL_RESERVED] + [subject for *_, subject in budgets.scoped],
    )
    channel_used = used[ledger.CHANNEL]
    if budgets.line_used is not None:
        # LINE also counts what other systems sent on the channel: trust the larger.
        channel_used = max(channel_used, budgets.line_used + used[ledger.CHANNEL_RESERVED])
    found = [QuotaFigures(BudgetScope.CHANNEL, budgets.channel_limit, channel_used, budgets.reset)]
    for scope, limit, subject in budgets.scoped:
        found.append(QuotaFigures(scope, limit, used[subject], budgets.reset))
    return found


def figures_for(
    token_pk: int | None, person_id: int | None, config: Mapping[str, Any], now: datetime
) -> list[QuotaFigures]:
    """Every budget a token's notifications count against, with what the month has used: the
    channel's first, then the person's and the token's when an admin set them."""
    return figures_under(budgets_for(token_pk, person_id, config, now))


def tightest(figures: Sequence[QuotaFigures]) -> QuotaFigures | None:
    """The budget with the least remaining (None when no budget has a limit)."""
    limited = [f for f in figures if f.limit is not None]
    return min(limited, key=lambda f: f.remaining) if limited else None


def _serialise_checks() -> None:
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": ADVISORY_LOCK_KEY})


def admit(budgets: Budgets, units: int, config: Mapping[str, Any]) -> list[QuotaFigures]:
    """Check that ``units`` more fit every one of ``budgets``, in the caller's transaction;
    returns every budget's figures *after* spending them (the channel's first), or raises
    :class:`BudgetExceededError` with the budget that refused.

    The call's answer headers and its threshold notices use these figures, so one Notify call
    reads the month's totals once, not once per use."""
    _serialise_checks()
    figures = figures_under(budgets)
    for budget in figures:
        if budget.limit is not None and budget.used + units > budget.limit:
            when = budget.reset.astimezone(billing_zone(config)).isoformat(timespec="minutes")
            raise BudgetExceededError(
                f"The {budget.scope}'s monthly LINE message budget is spent "
                f"({budget.used} of {budget.limit} used; this message would cost {units}); "
                f"it resets at {when}",
                budget,
            )
    return [QuotaFigures(f.scope, f.limit, f.used + units, f.reset) for f in figures]


def quota_headers(figures: QuotaFigures | None) -> dict[str, str]:
    """The monthly figures as the documented extension headers (none without a budget)."""
    if figures is None or figures.limit is None:
        return {}
    return {
        "X-LineQuota-Limit": str(figures.limit),
        "X-LineQuota-Remaining": str(figures.remaining),
        "X-LineQuota-Reset": str(int(figures.reset.timestamp())),
    }


def budget_targets(person_names: dict[int, str]) -> list[tuple[str, str]]:
    """What an admin may set a budget for: the channel, each person with a live token, and
    each live token, as (value, label) pairs for the LINE page's form."""
    from notify_site.relay.models import RelayClient

    targets = [(f"{BudgetScope.CHANNEL}:0", _("The whole channel"))]
    rows = db.session.execute(
        select(
            RelayAccessToken.id,
            RelayAccessToken.person_id,
            func.coalesce(RelayAccessToken.name, RelayClient.name),
        )
        .outerjoin(RelayClient, RelayClient.id == RelayAccessToken.client_pk)
        .where(RelayAccessToken.revoked_at.is_(None))
        .order_by(RelayAccessToken.id)
    ).all()
    people = sorted({row[1] for row in rows if row[1] is not None})
    targets += [(f"{BudgetScope.PERSON}:{p}", person_names.get(p, f"#{p}")) for p in people]
    for token_pk, person_id, name in rows:
        owner = person_names.get(person_id, "") if person_id is not None else ""
        label = f"#{token_pk} {name}" + (f" ({owner})" if owner else "")
        targets.append((f"{BudgetScope.TOKEN}:{token_pk}", label))
    return targets


def save_budget(target: str, units: int | None, *, now: datetime) -> None:
    """An admin's budget: ``target`` is ``scope:id`` (:func:`budget_targets`), ``units`` the
    monthly units (None: remove it; the channel then falls back to LINE's limit); commits."""
    scope, _sep, subject = target.partition(":")
    if scope not in (BudgetScope.CHANNEL, BudgetScope.PERSON, BudgetScope.TOKEN):
        raise BudgetError(_("Choose what the budget is for."))
    try:
        subject_id = int(subject)
    except ValueError:
        raise BudgetError(_("Choose what the budget is for.")) from None
    if units is not None and not 0 <= units <= 10_000_000:
        raise BudgetError(_("A budget is a whole number of units from 0 to 10,000,000."))
    if scope == BudgetScope.TOKEN and db.session.get(RelayAccessToken, subject_id) is None:
        raise BudgetError(_("Choose what the budget is for."))
    set_budget(scope, 0 if scope == BudgetScope.CHANNEL else subject_id, units, now=now)
    db.session.commit()


def token_figures(
    token_pks: list[int], config: Mapping[str, Any], now: datetime
) -> dict[int, QuotaFigures]:
    """Each token's units this month and its budget if one is set (My page's column)."""
    if not token_pks:
        return {}
    zone = billing_zone(config)
    month, reset = billing_month(now, zone), next_month_start(now, zone)
    # The running totals (ledger.py), not a sum over the month's ledger rows.
    subjects = {pk: ledger.token_subject(pk) for pk in token_pks}
    totals = ledger.totals(month, subjects.values())
    used = {pk: totals[subject] for pk, subject in subjects.items()}
    limits = dict(
        db.session.execute(
            select(RelayBudget.subject_id, RelayBudget.monthly_units).where(
                RelayBudget.scope == BudgetScope.TOKEN, RelayBudget.subject_id.in_(token_pks)
            )
        ).all()
    )
    return {
        pk: QuotaFigures(BudgetScope.TOKEN, limits.get(pk), int(used.get(pk) or 0), reset)
        for pk in token_pks
    }
