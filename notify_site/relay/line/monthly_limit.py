"""The monthly-limit pause: when the channel's month is spent, stop pushing and wait quietly.

LINE answers 429 both for its rate limit (requests per second) and for the channel's monthly
message limit (line-platform.md B5). The first passes in seconds and is retried with the
pushes' backoff (:mod:`push_outcome`); the second lasts until the quota comes back — a plan
upgrade, or the next billing month — so retrying it only spends calls that LINE refuses
(issue 22 measured a retry about every 7.5 s for 20 hours per waiting push).

So, after a 429, the relay:

* **tells the two apart**: LINE's message ("You have reached your monthly limit.") says so;
  the quota and consumption endpoints (:func:`channel.read_quota`) confirm it, and also catch
  a monthly 429 whose wording LINE might change (a 429 while the quota is spent);
* **pauses the channel** (:class:`RelayLineChannel`'s ``monthly_limit_*`` columns, shared by
  every process): no push goes out, and new Notify calls to LINE chats are answered 429 at
  once without a call to LINE (:func:`paused_now`);
* **re-checks the quota** on a slow schedule (``RELAY_LINE_MONTHLY_RECHECK_MINUTES``) and at
  the start of the billing month (counted in ``RELAY_LINE_BILLING_TZ``, Japan's time by
  default: LINE's plans are billed by calendar month in the account's country). One process
  takes each re-check (a conditional UPDATE on ``monthly_limit_recheck_at``);
* **resumes** once LINE reports room: every waiting push goes out, in its order, with its
  original retry key; the give-up clock of one LINE never executed restarts
  (``RelayPush.retry_since``): a refusal sends nothing, so no retry key was used. If LINE
  still refuses (its consumption figure is approximate), the one push that tried pauses the
  channel again: at most one push per re-check.

The refused push itself spends no attempt: a pause is not the push's failure.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, update

from notify_site.extensions import db
from notify_site.relay.line.channel import ChannelError, ChannelSettings, read_quota
from notify_site.relay.line.push_outcome import is_monthly_limit
from notify_site.relay.models import PushStatus, RelayLineChannel, RelayPush

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PauseSchedule:
    """How often a paused channel's quota is read again, and whose calendar the month is."""

    recheck: timedelta = timedelta(minutes=15)
    time_zone: str = "Asia/Tokyo"

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> PauseSchedule:
        return cls(
            recheck=timedelta(minutes=float(config["RELAY_LINE_MONTHLY_RECHECK_MINUTES"])),
            time_zone=str(config["RELAY_LINE_BILLING_TZ"]),
        )

    def next_month_start(self, now: datetime) -> datetime:
        """The start of the next billing month after ``now``, in UTC."""
        local = now.astimezone(ZoneInfo(self.time_zone))
        year, month = (local.year + 1, 1) if local.month == 12 else (local.year, local.month + 1)
        return datetime(year, month, 1, tzinfo=local.tzinfo).astimezone(UTC)

    def next_check(self, now: datetime) -> datetime:
        """When to read the quota again: after the interval, or at the month's turn if sooner."""
        return min(now + self.recheck, self.next_month_start(now))


@dataclass(frozen=True)
class Pause:
    """A paused channel, for the admin page and the Notify API's 429."""

    since: datetime
    recheck_at: datetime
    #: Quota re-checks made during this pause.
    checks: int
    #: Pushes LINE refused for the monthly limit during this pause (the first one included).
    refusals: int


def current_pause(settings: ChannelSettings) -> Pause | None:
    """The channel's pause, read afresh; None when it is not paused."""
    row = db.session.scalar(
        select(RelayLineChannel)
        .where(RelayLineChannel.channel_id == settings.channel_id)
        .execution_options(populate_existing=True)
    )
    if row is None or row.monthly_limit_at is None:
        return None
    return Pause(
        since=row.monthly_limit_at,
        recheck_at=row.monthly_limit_recheck_at or row.monthly_limit_at,
        checks=row.monthly_limit_checks,
        refusals=row.monthly_limit_refusals,
    )


def paused_now(settings: ChannelSettings | None) -> Pause | None:
    """The pause new Notify calls to LINE chats are refused for (None in sandbox mode)."""
    return None if settings is None else current_pause(settings)


def is_monthly_limit_429(settings: ChannelSettings, line_message: str | None) -> bool:
    """After a 429 from the push endpoint: is it the monthly limit? LINE's message says so;
    when it does not, the quota endpoints decide (a 429 while the quota is spent)."""
    said = is_monthly_limit(429, line_message)
    try:
        reading = read_quota(settings)
    except ChannelError as error:
        log.warning("relay: could not read the quota after a 429 (%s)", error.message)
        return said
    if said and not reading.exhausted:
        # LINE's consumption figure is approximate; its refusal is what counts.
        log.warning(
            "relay: LINE refused a push for the monthly limit while reporting %s of %s used",
            reading.used,
            reading.limit if reading.limit is not None else "no limit",
        )
    return said or reading.exhausted


def pause(settings: ChannelSettings, schedule: PauseSchedule, now: datetime) -> None:
    """Pause the channel (or count one more refusal of a pause already on); commits."""
    from notify_site.on_conflict import dialect_insert

    db.session.execute(
        dialect_insert(RelayLineChannel)
        .values(channel_id=settings.channel_id)
        .on_conflict_do_nothing(index_elements=["channel_id"])
    )
    started = db.session.execute(
        update(RelayLineChannel)
        .where(
            RelayLineChannel.channel_id == settings.channel_id,
            RelayLineChannel.monthly_limit_at.is_(None),
        )
        .values(
            monthly_limit_at=now,
            monthly_limit_recheck_at=schedule.next_check(now),
            monthly_limit_checks=0,
            monthly_limit_refusals=1,
        )
        .execution_options(synchronize_session=False)
    )
    if started.rowcount != 1:
        db.session.execute(
            update(RelayLineChannel)
            .where(RelayLineChannel.channel_id == settings.channel_id)
            .values(
                monthly_limit_refusals=RelayLineChannel.monthly_limit_refusals + 1,
                monthly_limit_recheck_at=schedule.next_check(now),
            )
            .execution_options(synchronize_session=False)
        )
    db.session.commit()
    if started.rowcount == 1:
        log.warning(
            "relay: LINE's monthly message limit is reached; pushes paused, quota re-checked "
            "every %s",
            schedule.recheck,
        )


def still_paused(settings: ChannelSettings, schedule: PauseSchedule, now: datetime) -> bool:
    """For the push job, before it pushes: False when the channel may push.

    A paused channel whose re-check is due has its quota read by the one process that takes
    the re-check; with room again the pause ends and the waiting pushes are due at once.
    Commits.
    """
    row = db.session.scalar(
        select(RelayLineChannel)
        .where(RelayLineChannel.channel_id == settings.channel_id)
        .execution_options(populate_existing=True)
    )
    if row is None or row.monthly_limit_at is None:
        return False
    due_at = row.monthly_limit_recheck_at
    if due_at is not None and due_at > now:
        db.session.commit()
        return True
    taken = db.session.execute(
        update(RelayLineChannel)
        .where(
            RelayLineChannel.channel_id == settings.channel_id,
            RelayLineChannel.monthly_limit_at.is_not(None),
            RelayLineChannel.monthly_limit_recheck_at == due_at
            if due_at is not None
            else RelayLineChannel.monthly_limit_recheck_at.is_(None),
        )
        .values(
            monthly_limit_recheck_at=schedule.next_check(now),
            monthly_limit_checks=RelayLineChannel.monthly_limit_checks + 1,
        )
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    if taken.rowcount != 1:
        return True  # another process is re-checking
    try:
        reading = read_quota(settings)
    except ChannelError as error:
        log.warning("relay: quota re-check failed (%s); still paused", error.message)
        return True
    if reading.exhausted:
        log.info("relay: quota re-check: %s of %s used; still paused", reading.used, reading.limit)
        return True
    resume(settings, now)
    return False


def resume(settings: ChannelSettings, now: datetime) -> int:
    """End the pause; commits. The waiting pushes were left due (in their order), so the
    push job takes them on its next round. Returns how many pushes are waiting."""
    db.session.execute(
        update(RelayLineChannel)
        .where(RelayLineChannel.channel_id == settings.channel_id)
        .values(monthly_limit_at=None, monthly_limit_recheck_at=None)
        .execution_options(synchronize_session=False)
    )
    # A push LINE certainly never executed (no attempt counted: never tried, or refused only
    # for the monthly limit, which spends none) starts its give-up clock afresh; one that may
    # have gone out (a 5xx, a timeout) keeps its clock, so that its retry key is never reused
    # past the 24 hours LINE remembers it.
    never_sent = RelayPush.attempts == 0
    db.session.execute(
        update(RelayPush)
        .where(RelayPush.status == PushStatus.PENDING, never_sent)
        .values(retry_since=now)
        .execution_options(synchronize_session=False)
    )
    waiting = db.session.scalar(
        select(func.count()).select_from(RelayPush).where(RelayPush.status == PushStatus.PENDING)
    )
    db.session.commit()
    log.warning("relay: LINE reports room in the monthly quota again; %s pushes resume", waiting)
    return waiting
