"""OAuth client for a LINE-Notify-compatible server (``/oauth/authorize``, ``/oauth/token``).

The contract, taken from the LINE Notify API document (docs/line-platform.md, part A), with
the hardening of reliability.md "OAuth":

* the browser goes to ``GET /oauth/authorize`` with ``response_type=code``, ``client_id``,
  ``redirect_uri``, ``scope=notify``, ``state``, and ``response_mode=form_post`` (the answer
  comes back as a POST); PKCE S256 (``code_challenge``) is sent even though LINE ignored it;
* the code is exchanged once at ``POST /oauth/token`` (form-encoded: ``grant_type``,
  ``code``, ``redirect_uri``, ``client_id``, ``client_secret`` in the body as LINE wanted,
  and the PKCE ``code_verifier``); the answer is ``{"access_token": ...}``. A refusal is an
  OAuth ``error`` (RFC 6749 §5.2) or LINE's own ``{"status": 400, "message": ...}``.

Authlib supplies the protocol pieces (the state and verifier, the S256 challenge, the
authorize URL); the call itself goes through :func:`notify_site.notify_client.send_request`,
like every call to a Notify server: the same timeout, no redirects, and the same typed errors
(:class:`~notify_site.notify_client.NetworkError` when nothing answered,
:class:`~notify_site.notify_client.ServerError` for a 5xx), plus two of its own:
:class:`CodeRefusedError` and :class:`TokenAnswerError`. The client secret, the code and the
verifier never appear in an error's message.

No Flask and no database here: the caller keeps the state and verifier (the site stores them
server-side, bound to the browser) and passes them back for the exchange.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import requests
from authlib.common.security import generate_token
from authlib.oauth2.rfc6749.parameters import prepare_grant_uri
from authlib.oauth2.rfc7636 import create_s256_code_challenge

from notify_site.notify_client import (
    NotifyError,
    ServerError,
    error_message,
    redact,
    send_request,
)

__all__ = [
    "Authorization",
    "CodeRefusedError",
    "NotifyOAuthClient",
    "TokenAnswerError",
]

_MAX_REASON_CHARS = 120


@dataclass(frozen=True)
class Authorization:
    """Where to send the browser, and what the callback must be checked against."""

    url: str
    state: str
    code_verifier: str


class CodeRefusedError(NotifyError):
    """The server refused the authorization code; ``message`` is its reason (the OAuth
    ``error``, or LINE's ``message``)."""


class TokenAnswerError(ServerError):
    """The server answered the exchange with success but no access token the client can use.

    ``without_token`` is true when the answer was a JSON object that simply held none, false
    when it could not be read at all.
    """

    def __init__(self, message: str, *, status_code: int, without_token: bool) -> None:
        self.without_token = without_token
        super().__init__(message, status_code=status_code)


class NotifyOAuthClient:
    """The OAuth endpoints of one Notify server, for one registered client."""

    def __init__(
        self,
        bot_origin: str,
        client_id: str,
        client_secret: str,
        *,
        timeout: float = 10.0,
        session: requests.Session | None = None,
    ) -> None:
        """``bot_origin`` is the server's OAuth root (``https://notify-bot.line.me``, or
        ``http://127.0.0.1:5000/relay``); ``timeout`` (seconds) applies to every call. A
        session passed in stays the caller's to close."""
        origin = bot_origin.rstrip("/")
        if not origin.startswith(("http://", "https://")):
            raise ValueError("bot_origin must be an http:// or https:// URL")
        self.bot_origin = origin
        self.client_id = client_id
        self._client_secret = client_secret
        self.timeout = timeout
        self._owns_session = session is None
        self.session = session if session is not None else requests.Session()

    def __repr__(self) -> str:
        return f"NotifyOAuthClient(bot_origin={self.bot_origin!r}, client_id={self.client_id!r})"

    def close(self) -> None:
        """Close the session if this client created it."""
        if self._owns_session:
            self.session.close()

    def authorization(self, redirect_uri: str) -> Authorization:
        """A fresh authorize URL with its own ``state`` and PKCE verifier (no call is made)."""
        state = generate_token(30)
        verifier = generate_token(48)
        url = prepare_grant_uri(
            self.bot_origin + "/oauth/authorize",
            client_id=self.client_id,
            response_type="code",
            redirect_uri=redirect_uri,
            scope="notify",
            state=state,
            code_challenge=create_s256_code_challenge(verifier),
            code_challenge_method="S256",
            response_mode="form_post",
        )
        return Authorization(url=url, state=state, code_verifier=verifier)

    def exchange_code(self, code: str, redirect_uri: str, code_verifier: str) -> str:
        """Exchange ``code`` for an access token (``POST /oauth/token``), once.

        Raises :class:`CodeRefusedError` when the server refused it,
        :class:`TokenAnswerError` when it said yes without a usable token,
        :class:`~notify_site.notify_client.ServerError` for a 5xx or an answer that is not
        JSON, :class:`~notify_site.notify_client.NetworkError` when nothing answered.
        """
        secrets = (self._client_secret, code, code_verifier)
        response = send_request(
            self.session,
            "POST",
            self.bot_origin + "/oauth/token",
            timeout=self.timeout,
            secrets=secrets,
            headers={"Accept": "application/json"},
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": redirect_uri,
                "client_id": self.client_id,
                "client_secret": self._client_secret,
                "code_verifier": code_verifier,
            },
        )
        status = response.status_code
        if status >= 500:
            raise ServerError(error_message(response, *secrets), status_code=status)
        body = _json_object(response)
        success = 200 <= status < 300
        if body is None:
            if success:
                raise TokenAnswerError(
                    "the token answer is not a JSON object", status_code=status, without_token=False
                )
            raise ServerError(error_message(response, *secrets), status_code=status)
        token = body.get("access_token")
        if success and isinstance(token, str) and token:
            return token
        # An OAuth error (RFC 6749 §5.2), or LINE's {status, message} without one.
        reason = body.get("error") or body.get("message")
        if reason:
            refused = redact(str(reason)[:_MAX_REASON_CHARS], *secrets)
            raise CodeRefusedError(refused, status_code=status)
        raise TokenAnswerError(
            "the token answer holds no access token", status_code=status, without_token=True
        )


def _json_object(response: requests.Response) -> dict[str, Any] | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None
