"""No surprise (issue 15): at 80 % and at 100 % of the channel's budget (LINE's quota by
default) or of a person's or token's budget, one notice per threshold per month.

Checked after each accepted Notify call (for that call's budgets) and on each round of the
channel's worker job (the channel's, since LINE's own count can cross a threshold without
the relay sending). A notice is a row of ``relay_quota_notices`` (month, subject,
threshold), unique: the insert that wins sends, any other finds the row and does nothing,
however many processes look at once.

The notice goes to the chat the operator chose, ``RELAY_QUOTA_NOTICE_CHAT``: a LINE user,
group or room id in channel mode (pushed like any notification, its units in the ledger
under no token, and never refused by a budget: a notice that the budget is spent must get
through), or a relay chat id in the sandbox (its inbox). Unset, nothing is sent, and the
warnings still show on the relay's LINE page and the site's ``/admin`` (:func:`admin_warnings`,
through the ``ADMIN_NOTICES`` seam). The notice is in English: it is written by the worker,
which has no reader's language.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import select

from notify_site.db_types import utcnow
from notify_site.extensions import db
from notify_site.on_conflict import dialect_insert
from notify_site.relay import budgets, ledger
from notify_site.relay.line.channel import current_settings
from notify_site.relay.line.cost import billing_month, billing_zone, units_for
from notify_site.relay.models import RelayChat, RelayMessage
from notify_site.relay.quota_models import BudgetScope, RelayQuotaNotice, UsageState

log = logging.getLogger(__name__)

SENDER = "Notify relay"


def _subject(figures: budgets.QuotaFigures, subject_id: int | None) -> str:
    return "channel" if figures.scope == BudgetScope.CHANNEL else f"{figures.scope}:{subject_id}"


def check_thresholds(
    config: Mapping[str, Any],
    now: datetime,
    *,
    token_pk: int | None = None,
    person_id: int | None = None,
    counted: tuple[budgets.QuotaFigures, ...] | None = None,
) -> int:
    """Send the notices due for the channel's budget and, when given, the person's and the
    token's; returns how many were sent. Commits.

    ``counted``: those budgets' figures as a call just left them (:func:`budgets.admit`),
    instead of reading them again."""
    month = billing_month(now, billing_zone(config))
    subjects = {
        BudgetScope.CHANNEL: None,
        BudgetScope.PERSON: person_id,
        BudgetScope.TOKEN: token_pk,
    }
    if counted is None:  # every budget in one read of the limits and one of the totals
        counted = tuple(budgets.figures_for(token_pk, person_id, config, now))
    candidates = [(figures, subjects[figures.scope]) for figures in counted]
    sent = 0
    for figures, subject_id in candidates:
        for threshold in budgets.THRESHOLDS:
            if not figures.limit or figures.percent < threshold:
                continue
            subject = _subject(figures, subject_id)
            # RETURNING says whether this call claimed the notice: on PostgreSQL the rowcount of
            # an INSERT … ON CONFLICT DO NOTHING read -1 here, so no notice was ever sent there.
            claimed = db.session.execute(
                dialect_insert(RelayQuotaNotice)
                .values(month=month, subject=subject, threshold=threshold, sent_at=now)
                .on_conflict_do_nothing(index_elements=["month", "subject", "threshold"])
                .returning(RelayQuotaNotice.threshold)
            ).first()
            if claimed is None:
                continue
            text = (
                f"LINE quota: {subject} has used {figures.percent}% of its monthly budget "
                f"({figures.used} of {figures.limit} units) in {month}."
            )
            _send(text, config, now)
            log.warning("relay: %s", text)
            sent += 1
    db.session.commit()
    return sent


def check_after_call(
    token_pk: int,
    person_id: int | None,
    counted: tuple[budgets.QuotaFigures, ...] | None = None,
) -> None:
    """After an accepted Notify call (``counted``: the budgets it counted against, as it left
    them): a notice must never cost the caller its 200."""
    try:
        check_thresholds(
            current_app.config,
            utcnow(),
            token_pk=token_pk,
            person_id=person_id,
            counted=counted,
        )
    except Exception:
        db.session.rollback()
        log.exception("relay: checking the quota's thresholds failed")


def _notice_chat(config: Mapping[str, Any]) -> RelayChat | None:
    chosen = config.get("RELAY_QUOTA_NOTICE_CHAT")
    if chosen in (None, ""):
        return None
    if isinstance(chosen, int) or str(chosen).isdigit():
        return db.session.get(RelayChat, int(chosen))
    return db.session.scalar(select(RelayChat).where(RelayChat.line_id == str(chosen)))


def _send(text: str, config: Mapping[str, Any], now: datetime) -> None:
    """Write the notice into the chosen chat (and queue its push in channel mode); no commit."""
    from notify_site.relay.line.push import queue_push

    chat = _notice_chat(config)
    if chat is None:
        return
    message = RelayMessage(chat_id=chat.id, client_name=SENDER, message=text, created_at=now)
    db.session.add(message)
    db.session.flush()
    pushed = current_settings() is not None and chat.line_id is not None
    push = queue_push(message, chat.line_id, now=now) if pushed else None
    db.session.flush()
    ledger.record(
        month=billing_month(now, billing_zone(config)),
        chat_id=chat.id,
        units=units_for(chat, config),
        state=UsageState.RESERVED if pushed else UsageState.SPENT,
        push_id=push.id if push is not None else None,
    )


def admin_warnings() -> list[str]:
    """The site's ``/admin`` seam: this month's warnings, in the reader's language."""
    from notify_site.relay.quota import quota_overview

    found = []
    for warning in quota_overview(current_app.config, utcnow()).warnings:
        figures = warning.figures
        if warning.subject:
            found.append(
                _(
                    "%(subject)s has used %(percent)s%% of its monthly budget "
                    "(%(used)s of %(limit)s units).",
                    subject=warning.subject,
                    percent=figures.percent,
                    used=figures.used,
                    limit=figures.limit,
                )
            )
        else:
            found.append(
                _(
                    "The channel has used %(percent)s%% of its monthly budget "
                    "(%(used)s of %(limit)s units).",
                    percent=figures.percent,
                    used=figures.used,
                    limit=figures.limit,
                )
            )
    return found
