"""What a push costs in LINE's monthly quota, and which billing month it counts in.

LINE counts one unit per **recipient** of a push (line-platform.md B5, B8): a push to a user
costs 1, a push to a group or room costs its member count, and the number of message objects
in the push (up to 5) changes nothing. Replies are free, and the relay never pays for them.

**Member counts** come from ``GET /v2/bot/group/{id}/members/count`` and
``/v2/bot/room/{id}/members/count`` (every account type may call them) and are cached on the
chat (``member_count``, ``member_count_at``). A ``join``, ``memberJoined`` or ``memberLeft``
event re-reads the count at once (``events.py``); a count older than
:data:`MEMBER_COUNT_MAX_AGE` is re-read by the push job before it pushes. The request that
accepts a Notify call never waits for LINE when a count is cached, however old; only a group
the relay has never counted is counted there (one call), and if LINE does not answer, the
call is priced at :data:`UNKNOWN_GROUP_SIZE` until the push job reads the real figure.

In the **sandbox** a user chat costs 1 and a group ``RELAY_SANDBOX_GROUP_MEMBERS`` (a
stand-in for LINE's count), so the ledger, budgets and 429s behave as in channel mode.

**The billing month** is counted in ``RELAY_LINE_BILLING_TZ``, by default ``Asia/Tokyo``.
LINE's documents say "the current month" for the quota and its consumption and name no time
zone. LY Corporation bills in Japan and its console shows Japan time, so the relay assumes
the month turns at midnight Japan time (UTC+9): a Taiwanese or Thai channel that sees its
count reset at its own midnight sets ``Asia/Taipei`` or ``Asia/Bangkok``. The hour of
difference only matters on the last evening of a month; the quota read from LINE every few
minutes (``relay/quota.py``) corrects the picture either way.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from notify_site.relay.line.channel import ChannelSettings, messaging_api
from notify_site.relay.models import ChatKind, RelayChat

log = logging.getLogger(__name__)

#: A cached member count older than this is read again before a push (issue 15: a day).
MEMBER_COUNT_MAX_AGE = timedelta(days=1)
#: What a group LINE would not count for us costs until the push job reads its count.
UNKNOWN_GROUP_SIZE = 1
DEFAULT_BILLING_TZ = "Asia/Tokyo"


def billing_zone(config: Mapping[str, Any]) -> ZoneInfo:
    return ZoneInfo(str(config.get("RELAY_LINE_BILLING_TZ") or DEFAULT_BILLING_TZ))


def billing_month(now: datetime, zone: ZoneInfo) -> str:
    """The billing month ``now`` falls in, as ``YYYY-MM`` (the ledger's ``month``)."""
    return now.astimezone(zone).strftime("%Y-%m")


def month_start(now: datetime, zone: ZoneInfo) -> datetime:
    """When the billing month of ``now`` began (UTC)."""
    local = now.astimezone(zone)
    return local.replace(day=1, hour=0, minute=0, second=0, microsecond=0).astimezone(UTC)


def next_month_start(now: datetime, zone: ZoneInfo) -> datetime:
    """When the quota and the budgets next reset: the start of the next billing month (UTC)."""
    local = now.astimezone(zone)
    year, month = (local.year + 1, 1) if local.month == 12 else (local.year, local.month + 1)
    return datetime(year, month, 1, tzinfo=zone).astimezone(UTC)


def is_shared_chat(chat: RelayChat) -> bool:
    """A group or room (LINE source types), or a sandbox group."""
    if chat.line_id is not None:
        return chat.source_type in ("group", "room") or chat.kind == ChatKind.GROUP
    return chat.kind == ChatKind.GROUP


def units_for(chat: RelayChat, config: Mapping[str, Any]) -> int:
    """What one push to ``chat`` costs now, from what the relay knows (no call to LINE)."""
    if not is_shared_chat(chat):
        return 1
    if chat.line_id is None:
        return max(int(config.get("RELAY_SANDBOX_GROUP_MEMBERS", 5)), 1)
    if chat.member_count is None:
        return UNKNOWN_GROUP_SIZE
    return max(chat.member_count, 1)


def needs_count(
    chat: RelayChat, now: datetime, *, max_age: timedelta = MEMBER_COUNT_MAX_AGE
) -> bool:
    """True for a LINE group or room whose member count is unknown or older than ``max_age``."""
    if chat.line_id is None or not is_shared_chat(chat):
        return False
    return chat.member_count_at is None or now - chat.member_count_at >= max_age


def read_member_count(settings: ChannelSettings, chat: RelayChat, now: datetime) -> bool:
    """Ask LINE how many members the group or room has and cache it on ``chat`` (no commit);
    False when LINE did not say (the old figure stays, still due for a read)."""
    from linebot.v3 import messaging  # the SDK loads on first use (channel.py)

    try:
        api = messaging_api(settings)
        if chat.source_type == "room":
            answer = api.get_room_member_count(chat.line_id, _request_timeout=settings.timeout)
        else:
            answer = api.get_group_member_count(chat.line_id, _request_timeout=settings.timeout)
    except messaging.ApiException as error:
        log.info("relay: LINE gave no member count for chat %s (HTTP %s)", chat.id, error.status)
        return False
    except Exception as error:  # noqa: BLE001 - the cached or stand-in figure serves meanwhile
        log.warning("relay: could not read a member count (%s)", type(error).__name__)
        return False
    chat.member_count = int(answer.count)
    chat.member_count_at = now
    return True
