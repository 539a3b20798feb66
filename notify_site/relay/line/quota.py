"""The channel's bot and monthly message quota (line-platform.md B5), for the admin page and
``flask relay line-check``."""

from __future__ import annotations

from dataclasses import dataclass

from notify_site.relay.line.channel import ChannelError, ChannelSettings, messaging_api


@dataclass(frozen=True)
class ChannelReport:
    bot_name: str
    basic_id: str | None
    #: None: no monthly limit (quota type "none").
    quota: int | None
    #: Messages counted this month so far (LINE says: approximate).
    used: int

    @property
    def remaining(self) -> int | None:
        return None if self.quota is None else max(self.quota - self.used, 0)


def channel_report(settings: ChannelSettings) -> ChannelReport:
    """Ask LINE for the bot's name and this month's quota and consumption."""
    from linebot.v3 import messaging  # the SDK loads on first use (channel.py)

    api = messaging_api(settings)
    try:
        bot = api.get_bot_info(_request_timeout=settings.timeout)
        quota = api.get_message_quota(_request_timeout=settings.timeout)
        used = api.get_message_quota_consumption(_request_timeout=settings.timeout)
    except messaging.ApiException as error:
        raise ChannelError(f"LINE answered HTTP {error.status}", error.status) from None
    except Exception as error:  # noqa: BLE001 - network errors
        raise ChannelError(f"could not reach LINE ({type(error).__name__})") from None
    limit = quota.value if quota.type == "limited" else None
    return ChannelReport(bot.display_name, bot.basic_id, limit, int(used.total_usage or 0))
