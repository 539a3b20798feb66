"""HTTP client for a LINE-Notify-compatible server (``/api/notify``, ``/status``, ``/revoke``).

The contract, taken from the LINE Notify API document (see docs/line-platform.md, part A):

* every call carries ``Authorization: Bearer <access token>``;
* ``POST /api/notify`` takes ``message`` (always) and optionally ``stickerPackageId``,
  ``stickerId``, ``imageThumbnail``, ``imageFullsize``, ``notificationDisabled``, form-encoded,
  or as ``multipart/form-data`` when an ``imageFile`` is uploaded;
* ``GET /api/status`` answers the token's ``targetType`` (``"USER"``/``"GROUP"``) and ``target``;
* ``POST /api/revoke`` (form-encoded, no parameters) disables the token;
* the body is JSON ``{"status": <HTTP code>, "message": "..."}``; 200 means success, 400 a bad
  request, 401 an invalid (usually user-revoked) token, anything else a server-side problem;
* an extension of this site's relay (LINE's server never sent it): a 401 whose body also holds
  ``"reason": "chat_unreachable"`` means the token is sound but its chat cannot be reached
  (the user blocked the bot, or the bot left the group) and may come back
  (:attr:`AuthError.chat_unreachable`);
* notify and status answers carry ``X-RateLimit-*`` headers (:class:`RateLimit`).

Each call either returns a typed result or raises one :class:`NotifyError` subclass:
:class:`BadRequestError` (400), :class:`AuthError` (401), :class:`RateLimitedError` (429),
:class:`ServerError` (any other status, or a 200 without the expected JSON) and
:class:`NetworkError` (no HTTP answer at all). Error messages never contain the access token.
When a message is this client's own words rather than the server's, the error also carries a
stable ``code`` and its ``params`` (:data:`NO_ANSWER`...), so that whoever stores the message
can show it in another language later (notify_site/stored_text.py).

This module knows nothing of Flask or the database: it is given an origin, a timeout and
optionally a :class:`requests.Session`, and it is the only place that builds Notify headers.
The OAuth endpoints of the same server (the authorize URL and the code exchange) are in
:mod:`notify_site.notify_oauth`, which sends through :func:`send_request` too: every call to a
Notify server has the same timeout, no redirects, and the same typed errors.

One idea, past 400 lines: a remote API's client with its value objects, its errors and its
calls, which read best together (the indico model of style.md).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.utils import get_environ_proxies

__all__ = [
    "AuthError",
    "BadRequestError",
    "CHAT_UNREACHABLE_REASON",
    "NO_ANSWER",
    "NO_CONNECTION",
    "REQUEST_FAILED",
    "UNEXPECTED_ANSWER",
    "NetworkError",
    "NotifyClient",
    "NotifyError",
    "NotifyResponse",
    "RateLimit",
    "RateLimitedError",
    "ServerError",
    "TargetStatus",
    "EnvironmentOnceSession",
    "error_message",
    "redact",
    "send_request",
]

# A header value: printable ASCII without spaces. Anything else could never authenticate, and
# requests would quote the offending header value (the token) in its own exception.
_TOKEN_PATTERN = re.compile(r"[\x21-\x7e]+")
# Rate-limit headers are plain non-negative decimal integers; at most 18 digits keeps every
# value far from int-parsing limits.
_HEADER_INT_PATTERN = re.compile(r"[0-9]{1,18}")
# datetime cannot represent instants after 9999-12-31T23:59:59Z.
_MAX_EPOCH_SECONDS = 253_402_300_799
_MAX_MESSAGE_CHARS = 200
#: The ``reason`` of a 401 body whose token is sound but whose chat is unreachable.
CHAT_UNREACHABLE_REASON = "chat_unreachable"
#: The 429 body's ``reason`` when the relay's LINE channel has spent its monthly limit.
MONTHLY_LIMIT_REASON = "monthly_limit"
#: ... and when a monthly LINE budget the relay's admin set is spent (the relay's extension).
MONTHLY_BUDGET_REASON = "monthly_budget"
#: The 200 body's ``delivery`` when the server has accepted but not yet delivered a message.
PENDING = "pending"
_MESSAGE_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
#: The codes of the messages this client writes itself (:attr:`NotifyError.code`).
NO_ANSWER = "no_answer"  # params: url, seconds, detail
NO_CONNECTION = "no_connection"  # params: url, detail
REQUEST_FAILED = "request_failed"  # params: url, detail
UNEXPECTED_ANSWER = "unexpected_answer"  # a 200 whose body is not the expected JSON


@dataclass(frozen=True)
class RateLimit:
    """The ``X-RateLimit-*`` headers of one answer; ``None`` where a header was absent or bad."""

    limit: int | None = None
    remaining: int | None = None
    image_limit: int | None = None
    image_remaining: int | None = None
    #: When the hourly window resets, in UTC epoch seconds.
    reset: int | None = None
    #: Extension (the built-in relay; LINE Notify never sent them): the monthly LINE message
    #: budget from ``X-LineQuota-Limit``/``-Remaining``/``-Reset`` (epoch seconds); None from
    #: a plain Notify server. Not part of :meth:`to_dict`.
    monthly_limit: int | None = None
    monthly_remaining: int | None = None
    monthly_reset: int | None = None

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> RateLimit:
        """Read the rate-limit headers, matching names case-insensitively. Never raises."""
        try:
            lowered = {str(name).lower(): value for name, value in headers.items()}
        except (AttributeError, TypeError):
            lowered = {}

        def read(name: str) -> int | None:
            value = lowered.get(name)
            if not isinstance(value, str):
                return None
            value = value.strip()
            if not _HEADER_INT_PATTERN.fullmatch(value):
                return None
            return int(value)

        reset = read("x-ratelimit-reset")
        if reset is not None and reset > _MAX_EPOCH_SECONDS:
            reset = None
        monthly_reset = read("x-linequota-reset")
        if monthly_reset is not None and monthly_reset > _MAX_EPOCH_SECONDS:
            monthly_reset = None
        return cls(
            limit=read("x-ratelimit-limit"),
            remaining=read("x-ratelimit-remaining"),
            image_limit=read("x-ratelimit-imagelimit"),
            image_remaining=read("x-ratelimit-imageremaining"),
            reset=reset,
            monthly_limit=read("x-linequota-limit"),
            monthly_remaining=read("x-linequota-remaining"),
            monthly_reset=monthly_reset,
        )

    @property
    def monthly_reset_at(self) -> datetime | None:
        if self.monthly_reset is None:
            return None
        return datetime.fromtimestamp(self.monthly_reset, UTC)

    @property
    def reset_at(self) -> datetime | None:
        """The reset time as an aware UTC datetime, or ``None`` when unknown."""
        if self.reset is None:
            return None
        return datetime.fromtimestamp(self.reset, UTC)

    def is_spent(self, now: datetime) -> bool:
        """True when no calls remain and the window resets after ``now`` (an aware datetime)."""
        if now.tzinfo is None:
            raise ValueError("is_spent needs an aware datetime")
        if self.remaining != 0 or self.reset is None:
            return False
        return self.reset > now.timestamp()

    def to_dict(self) -> dict[str, Any]:
        """The five fields plus ``reset_at`` as an ISO 8601 string (or ``None``)."""
        reset_at = self.reset_at
        return {
            "limit": self.limit,
            "remaining": self.remaining,
            "image_limit": self.image_limit,
            "image_remaining": self.image_remaining,
            "reset": self.reset,
            "reset_at": reset_at.isoformat() if reset_at else None,
        }


@dataclass(frozen=True)
class NotifyResponse:
    """A successful answer from ``/api/notify`` or ``/api/revoke``.

    ``delivery`` and ``message_id`` are extension fields (this site's relay in channel mode):
    ``delivery == "pending"`` means the server accepted the message but has not delivered it
    yet, and :meth:`NotifyClient.message_state` follows it by ``message_id``. A plain Notify
    server sends neither: its 200 means the message went out.
    """

    status: int
    message: str
    rate_limit: RateLimit
    delivery: str | None = None
    message_id: str | None = None

    @property
    def pending(self) -> bool:
        return self.delivery == PENDING and bool(self.message_id)


@dataclass(frozen=True)
class MessageState:
    """``GET /api/messages/<id>`` (an extension): where a pending message stands now.

    ``delivery``: ``"pending"``, ``"delivered"``, ``"failed"`` or ``"monthly_limit"``;
    ``reason``: the server's words, when it gave any.
    """

    delivery: str
    reason: str | None = None


@dataclass(frozen=True)
class TargetStatus:
    """A successful answer from ``/api/status``: where the token delivers."""

    #: ``"USER"`` or ``"GROUP"``; ``None`` when the server did not say.
    target_type: str | None
    #: The user or group name; ``None`` when unavailable (e.g. the user left the group).
    target: str | None
    message: str
    rate_limit: RateLimit


class NotifyError(Exception):
    """A Notify call did not succeed.

    ``status_code`` is the HTTP status (``None`` when there was no HTTP answer), ``message`` the
    server's explanation (or ours), ``rate_limit`` the headers of the answer when there was one.
    When ``message`` is ours, ``code`` names it and ``params`` holds its variable parts (plain
    strings and numbers); for a server's words both are None.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        rate_limit: RateLimit | None = None,
        code: str | None = None,
        params: dict[str, str | int | float] | None = None,
    ) -> None:
        self.message = message
        self.status_code = status_code
        self.rate_limit = rate_limit
        self.code = code
        self.params = params
        super().__init__(self._describe())

    def _describe(self) -> str:
        if self.status_code is None:
            return self.message
        return f"Notify server answered {self.status_code}: {self.message}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}(status_code={self.status_code!r}, message={self.message!r})"


class BadRequestError(NotifyError):
    """400: the server rejected the parameters (e.g. a message over 1000 characters)."""


class AuthError(NotifyError):
    """401: the token is invalid, usually revoked by its user; the connection is dead.

    Unless ``chat_unreachable``: the body said ``"reason": "chat_unreachable"`` (this site's
    relay in channel mode), so the token is sound but its chat blocked the bot or removed it
    from the group; the chat may come back, and the token should be kept.

    Also raised, with ``status_code`` ``None`` and without any request, for a token that could
    never be sent (empty, or with characters an HTTP header cannot carry).
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        rate_limit: RateLimit | None = None,
        chat_unreachable: bool = False,
        code: str | None = None,
        params: dict[str, str | int | float] | None = None,
    ) -> None:
        self.chat_unreachable = chat_unreachable
        super().__init__(
            message, status_code=status_code, rate_limit=rate_limit, code=code, params=params
        )

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(status_code={self.status_code!r}, message={self.message!r}, "
            f"chat_unreachable={self.chat_unreachable!r})"
        )


class RateLimitedError(NotifyError):
    """429: the token's hourly allowance is spent; ``rate_limit.reset`` says when it returns.

    LINE never documented what ``/api/notify`` answers once the hourly limit is exhausted
    (marked [?] in docs/line-platform.md); this client takes 429 to be that answer.

    ``monthly_limit``: the body said ``"reason": "monthly_limit"`` (this site's relay in
    channel mode): LINE's monthly message limit is spent, which no hourly reset brings back.
    ``monthly_budget``: the body said ``"reason": "monthly_budget"``: a monthly LINE budget set
    at the relay is spent; no hourly reset brings it back either.
    """

    def __init__(
        self,
        message: str,
        *,
        monthly_limit: bool = False,
        monthly_budget: bool = False,
        **kwargs: Any,
    ) -> None:
        self.monthly_limit = monthly_limit
        self.monthly_budget = monthly_budget
        super().__init__(message, **kwargs)

    def _describe(self) -> str:
        text = super()._describe()
        reset_at = self.rate_limit.reset_at if self.rate_limit else None
        if reset_at is not None:
            text += f" (limit resets at {reset_at.isoformat()})"
        return text


class ServerError(NotifyError):
    """5xx, any other unexpected status, or a 200 without the expected JSON body."""


class NetworkError(NotifyError):
    """No HTTP answer: timeout, refused or broken connection, or another transport failure."""


class NotifyClient:
    """Calls one Notify server through one reused :class:`requests.Session`."""

    def __init__(
        self,
        api_origin: str,
        *,
        timeout: float = 10.0,
        session: requests.Session | None = None,
    ) -> None:
        """``api_origin`` is the server root, e.g. ``https://notify-api.line.me`` or
        ``http://127.0.0.1:5000/relay``; ``timeout`` (seconds) applies to every call.

        A session passed in stays the caller's to close; one created here is closed by
        :meth:`close`.
        """
        origin = api_origin.rstrip("/")
        if not origin.startswith(("http://", "https://")):
            raise ValueError("api_origin must be an http:// or https:// URL")
        self.api_origin = origin
        self.timeout = timeout
        self._owns_session = session is None
        self.session = session if session is not None else EnvironmentOnceSession()

    def __repr__(self) -> str:
        return f"NotifyClient(api_origin={self.api_origin!r}, timeout={self.timeout!r})"

    def close(self) -> None:
        """Close the session if this client created it."""
        if self._owns_session:
            self.session.close()

    def __enter__(self) -> NotifyClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def notify(
        self,
        token: str,
        message: str,
        *,
        sticker_package_id: int | None = None,
        sticker_id: int | None = None,
        image_thumbnail: str | None = None,
        image_fullsize: str | None = None,
        image_file: tuple[str, bytes, str] | None = None,
        notification_disabled: bool = False,
    ) -> NotifyResponse:
        """Send ``message`` to the chat behind ``token`` (``POST /api/notify``).

        Only the parameters that are set are sent; ``notificationDisabled=true`` is sent when
        ``notification_disabled`` is true. ``image_file`` is ``(filename, content, content
        type)`` and switches the body to ``multipart/form-data`` with the file as
        ``imageFile``. No limits are checked here: the server decides and answers 400.
        """
        fields: dict[str, str] = {"message": message}
        optional = {
            "stickerPackageId": sticker_package_id,
            "stickerId": sticker_id,
            "imageThumbnail": image_thumbnail,
            "imageFullsize": image_fullsize,
        }
        fields.update({name: str(value) for name, value in optional.items() if value is not None})
        if notification_disabled:
            fields["notificationDisabled"] = "true"
        files = None
        if image_file is not None:
            filename, content, content_type = image_file
            files = {"imageFile": (filename, content, content_type)}
        response = self._request("POST", "/api/notify", token, data=fields, files=files)
        body = _success_body(response, token)
        delivery = body.get("delivery")
        message_id = body.get("messageId")
        return NotifyResponse(
            status=body["status"],
            message=body["message"],
            rate_limit=RateLimit.from_headers(response.headers),
            delivery=delivery if isinstance(delivery, str) else None,
            message_id=message_id if _is_message_id(message_id) else None,
        )

    def message_state(self, token: str, message_id: str) -> MessageState:
        """Where a message the server answered *pending* stands (``GET /api/messages/<id>``,
        an extension of this site's relay; it spends no call)."""
        if not _is_message_id(message_id):
            raise ValueError("not a message id")
        response = self._request("GET", f"/api/messages/{message_id}", token)
        body = _success_body(response, token)
        delivery = body.get("delivery")
        reason = body.get("reason")
        if not isinstance(delivery, str):
            raise ServerError(
                "the message's state has no delivery field",
                status_code=response.status_code,
                code=UNEXPECTED_ANSWER,
            )
        return MessageState(
            delivery=delivery[:32],
            reason=_shorten(redact(reason, token)) if isinstance(reason, str) else None,
        )

    def status(self, token: str) -> TargetStatus:
        """Ask where ``token`` delivers (``GET /api/status``). This call also counts against
        the token's hourly limit."""
        response = self._request("GET", "/api/status", token)
        body = _success_body(response, token)
        target_type = body.get("targetType")
        target = body.get("target")
        if not (target_type is None or isinstance(target_type, str)) or not (
            target is None or isinstance(target, str)
        ):
            raise ServerError(
                "status answer has a non-string targetType or target",
                status_code=response.status_code,
                rate_limit=RateLimit.from_headers(response.headers),
            )
        return TargetStatus(
            target_type=target_type,
            target=target,
            message=body["message"],
            rate_limit=RateLimit.from_headers(response.headers),
        )

    def revoke(self, token: str) -> NotifyResponse:
        """Disable ``token`` on the server (``POST /api/revoke``, form-encoded, no parameters)."""
        # requests sends an empty dict as no body at all; LINE documents this call as
        # form-encoded, so the (empty) form and its content type are sent explicitly.
        response = self._request(
            "POST",
            "/api/revoke",
            token,
            data="",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        body = _success_body(response, token)
        return NotifyResponse(
            status=body["status"],
            message=body["message"],
            rate_limit=RateLimit.from_headers(response.headers),
        )

    def _request(
        self,
        method: str,
        path: str,
        token: str,
        *,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> requests.Response:
        """Send one call; return the response if it is a 200, raise the matching error if not."""
        if not isinstance(token, str):
            raise TypeError("token must be a str")
        if not _TOKEN_PATTERN.fullmatch(token):
            raise AuthError("the access token is empty or has characters a header cannot carry")
        headers = {
            **(headers or {}),
            "Authorization": f"Bearer {token}",
            "Accept": "application/json",
        }
        response = send_request(
            self.session,
            method,
            self.api_origin + path,
            timeout=self.timeout,
            secrets=(token,),
            headers=headers,
            **kwargs,
        )
        if response.status_code == 200:
            return response
        if response.status_code == 401:
            raise AuthError(
                error_message(response, token),
                status_code=401,
                rate_limit=RateLimit.from_headers(response.headers),
                chat_unreachable=_error_reason(response) == CHAT_UNREACHABLE_REASON,
            )
        if response.status_code == 429:
            raise RateLimitedError(
                error_message(response, token),
                status_code=429,
                rate_limit=RateLimit.from_headers(response.headers),
                monthly_limit=_error_reason(response) == MONTHLY_LIMIT_REASON,
                monthly_budget=_error_reason(response) == MONTHLY_BUDGET_REASON,
            )
        error_class = {400: BadRequestError}.get(response.status_code, ServerError)
        raise error_class(
            error_message(response, token),
            status_code=response.status_code,
            rate_limit=RateLimit.from_headers(response.headers),
        )


class EnvironmentOnceSession(requests.Session):
    """A :class:`requests.Session` that reads the environment's proxy and CA-bundle settings
    once per server instead of on every call.

    requests looks them up for each request (every ``*_proxy`` variable, by a scan of the whole
    environment, then ``no_proxy`` matching): for a worker that calls one server thousands of
    times that was a tenth of its cost per delivery under cProfile (bench/README.md, "where a
    delivery's time goes"). The answer depends on the environment and the server's scheme and
    host only; a process's proxy settings do not change while it runs. Everything else is
    requests' own :meth:`requests.Session.merge_environment_settings`.
    """

    def __init__(self) -> None:
        super().__init__()
        self._environment: dict[tuple[str, str], tuple[dict[str, str], str | None]] = {}

    def merge_environment_settings(self, url, proxies, stream, verify, cert):
        if not self.trust_env or (proxies is not None and "no_proxy" in proxies):
            return super().merge_environment_settings(url, proxies, stream, verify, cert)
        parts = urlsplit(url)
        key = (parts.scheme, parts.netloc)
        found = self._environment.get(key)
        if found is None:
            found = (
                get_environ_proxies(url, no_proxy=None),
                os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE"),
            )
            self._environment[key] = found
        environ_proxies, ca_bundle = found
        if proxies is not None:
            for name, value in environ_proxies.items():
                proxies.setdefault(name, value)
        if verify is True or verify is None:
            verify = ca_bundle or verify
        return {
            "proxies": requests.sessions.merge_setting(proxies, self.proxies),
            "stream": requests.sessions.merge_setting(stream, self.stream),
            "verify": requests.sessions.merge_setting(verify, self.verify),
            "cert": requests.sessions.merge_setting(cert, self.cert),
        }


def send_request(
    session: requests.Session,
    method: str,
    url: str,
    *,
    timeout: float,
    secrets: tuple[str, ...] = (),
    **kwargs: Any,
) -> requests.Response:
    """Make one call to a Notify server, as every call to one is made: within ``timeout``
    seconds, without following redirects (a Notify server never sends one, and following it
    would carry a token or a client secret to wherever it points), and with any transport
    failure raised as :class:`NetworkError` whose message has ``secrets`` redacted.

    The answer is returned whatever its status; reading it is the caller's part.
    """
    try:
        return session.request(method, url, timeout=timeout, allow_redirects=False, **kwargs)
    except requests.RequestException as exc:
        detail = _exception_summary(exc, *secrets)
        params: dict[str, str | int | float] = {"url": url, "detail": detail}
        if isinstance(exc, requests.Timeout):
            code = NO_ANSWER
            what = f"no answer from the Notify server at {url} within {timeout} s"
            params["seconds"] = timeout
        elif isinstance(exc, requests.ConnectionError):
            code = NO_CONNECTION
            what = f"could not connect to the Notify server at {url}"
        else:
            code = REQUEST_FAILED
            what = f"request to the Notify server at {url} failed"
        raise NetworkError(f"{what} ({detail})", code=code, params=params) from exc


def _success_body(response: requests.Response, token: str) -> dict[str, Any]:
    """The JSON object of a 200 answer, which must hold ``status`` 200 and a ``message``."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if (
        not isinstance(body, dict)
        or type(body.get("status")) is not int
        or body["status"] != 200
        or not isinstance(body.get("message"), str)
    ):
        raise ServerError(
            "the body is not the expected JSON {status: 200, message: ...}",
            status_code=response.status_code,
            rate_limit=RateLimit.from_headers(response.headers),
            code=UNEXPECTED_ANSWER,
        )
    return body


def error_message(response: requests.Response, *secrets: str) -> str:
    """A short explanation of a failed answer: the JSON ``message``, else brief plain text, else
    the reason phrase, with ``secrets`` redacted. Only the response body is read, never the
    request."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("message"), str) and body["message"].strip():
        text = body["message"]
    else:
        text = response.text.strip()
        # An HTML error page says nothing the reason phrase does not.
        if not text or text.startswith("<"):
            text = response.reason or "(no message)"
    return _shorten(redact(text, *secrets))


def _is_message_id(value: Any) -> bool:
    """A message id as the extension gives it: short, URL-safe."""
    return isinstance(value, str) and _MESSAGE_ID.fullmatch(value) is not None


def _error_reason(response: requests.Response) -> str | None:
    """The ``reason`` extension field of a JSON error body, if it is a string."""
    try:
        body = response.json()
    except ValueError:
        return None
    reason = body.get("reason") if isinstance(body, dict) else None
    return reason if isinstance(reason, str) else None


def _exception_summary(exc: BaseException, *secrets: str) -> str:
    detail = str(exc)
    summary = f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__
    return _shorten(redact(summary, *secrets))


def redact(text: str, *secrets: str) -> str:
    """``text`` with every one of ``secrets`` replaced by ``[token]``."""
    # A server (or a proxy) might echo the request back; a secret must not reach a log.
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[token]")
    return text


def _shorten(text: str) -> str:
    text = " ".join(text.split())
    if len(text) > _MAX_MESSAGE_CHARS:
        text = text[: _MAX_MESSAGE_CHARS - 1] + "…"
    return text
