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


class ClientRegistrationError(RelayError):
    """A client cannot be registered (a bad name or redirect URI)."""


class TokenRequestError(RelayError):
    """The token request is malformed, or its code or client credentials are not valid.

    LINE answered 400 to bad codes and bad client credentials alike, and so does the relay.
    """


class InvalidTokenError(RelayError):
    """The access token is missing, unknown or revoked."""

    status = 401

    def __init__(self, message: str = "Invalid access token") -> None:
        super().__init__(message)


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
