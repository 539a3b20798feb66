"""Domain errors raised by the relay's services; the views turn them into answers.

Every error carries the HTTP status a LINE Notify server answered with and a message that is
safe to show to the caller: it never contains a token, a code or a secret.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from notify_site.relay.ratelimit import RateWindow


class RelayError(Exception):
    """Base class: ``status`` is the HTTP status, ``message`` what the caller is told."""

    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class AuthorizeRequestError(RelayError):
    """The authorize request is unusable; answered with an error page, never a redirect."""


class ChatNotAvailableError(RelayError):
    """The chosen chat is not one the user may connect."""


class TokenNameError(RelayError):
    """A personal access token's name is empty, too long or holds control characters."""


class TokenNotFoundError(RelayError):
    """No live token of this person has that id (My page's Disconnect)."""

    status = 404


class ClientRegistrationError(RelayError):
    """A client cannot be registered (a bad name or redirect URI)."""


class TokenRequestError(RelayError):
    """The token request is malformed, or its code or client credentials are not valid.

    LINE answered 400 to bad codes and bad client credentials alike, and so does the relay.
    """


class InvalidTokenError(RelayError):
    """The access token is missing, unknown or revoked.

    ``reason``, when set, is an extension field of the 401 body (``{"status": 401, "message":
    ..., "reason": ...}``) that says more than LINE Notify did; a plain invalid token has none,
    so its body is exactly LINE's.
    """

    status = 401

    def __init__(self, message: str = "Invalid access token", *, reason: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason


#: The 401 body's ``reason`` when the token is sound but its chat cannot be reached (channel
#: mode: the user blocked the bot, or the bot left the group). The chat may come back (a
#: re-follow), and the token with it, so a client should keep the token rather than drop it.
CHAT_UNREACHABLE_REASON = "chat_unreachable"


class ChatUnreachableError(InvalidTokenError):
    """The token is live but its LINE chat can no longer be reached (until it comes back).

    Answered as LINE Notify answered a token whose chat was gone, 401, with the extension field
    ``"reason": "chat_unreachable"`` in the body so that a client can tell it from a revoked
    token: ``{"status": 401, "message": "Invalid access token: the chat can no longer be
    reached", "reason": "chat_unreachable"}``.
    """

    def __init__(self) -> None:
        super().__init__(
            "Invalid access token: the chat can no longer be reached",
            reason=CHAT_UNREACHABLE_REASON,
        )


class NotifyFieldError(RelayError):
    """One field of ``/api/notify`` is missing or invalid; the message starts with its name."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field


class RateLimitExceededError(RelayError):
    """The token's window has no calls (or no image uploads) left."""

    status = 429

    def __init__(self, message: str, window: RateWindow) -> None:
        super().__init__(message)
        self.window = window


#: The 429 body's ``reason`` when LINE's monthly message limit is spent (channel mode).
MONTHLY_LIMIT_REASON = "monthly_limit"
#: The 429 body's ``reason`` when a monthly LINE budget (channel, person, token) is spent.
MONTHLY_BUDGET_REASON = "monthly_budget"


class MonthlyLimitError(RelayError):
    """LINE refuses pushes for the channel's monthly message limit; the relay is paused.

    Answered at once, with no call to LINE and no call spent from the token's window:
    ``{"status": 429, "message": "...", "reason": "monthly_limit"}`` (an extension field, as
    for ``chat_unreachable``), the time the quota is next read in ``recheckAt``.
    """

    status = 429
    reason = MONTHLY_LIMIT_REASON

    def __init__(self, recheck_at: str | None) -> None:
        super().__init__(
            "Monthly message limit reached: LINE accepts no more messages from this channel "
            "until its quota is raised or the month ends"
        )
        self.extra = {"recheckAt": recheck_at} if recheck_at else {}


class MessageNotFoundError(RelayError):
    """No message with that id was sent with this token (``GET /api/messages/<id>``)."""

    status = 404

    def __init__(self) -> None:
        super().__init__("No such message")


class LineRefusedError(RelayError):
    """LINE refused the push for good (channel mode, answered while the caller waited).

    A Notify-shaped 400: ``{"status": 400, "message": "LINE refused the message: ...",
    "details": [{"property": ..., "message": ...}]}`` (``details``, LINE's field-level
    reasons, is an extension field, present when LINE gave them).
    """

    def __init__(self, reason: str, details: list[dict[str, str]]) -> None:
        super().__init__(f"LINE refused the message: {reason}")
        self.extra = {"details": details} if details else {}


class BudgetError(RelayError):
    """An admin's budget form is unusable (an unknown target, a number out of range)."""


class BudgetExceededError(RelayError):
    """The notification would take a monthly LINE budget (the channel's, its person's or its
    token's) past its limit: refused before anything is queued, so LINE is not called.

    ``figures`` (a :class:`notify_site.relay.budgets.QuotaFigures`) are the budget that
    refused, for the ``X-LineQuota-*`` headers. The body's ``reason`` (an extension field, as
    for ``monthly_limit``) tells a client that no hourly reset brings this call back.
    """

    status = 429
    reason = MONTHLY_BUDGET_REASON

    def __init__(self, message: str, figures: object) -> None:
        super().__init__(message)
        self.figures = figures
