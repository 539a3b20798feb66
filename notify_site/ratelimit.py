"""Rate limits (SPEC 4.7): a per-key limit on the JSON API, and a sign-in throttle.

Both count in Flask-Limiter's storage: this process's memory by default, or Redis when
``RATELIMIT_STORAGE_URI`` names one, so that every web process and machine shares one count.

* The API limit (``API_RATE_LIMIT``) is one budget per API key for every ``/api/v1`` endpoint
  together. A key is identified by the SHA-256 of the key presented (the same hash the database
  keeps), never by the client's address: one key used from many addresses has one budget, and
  keys used from behind one NAT have one each. Requests that present no key are counted per
  address. Every API answer carries ``RateLimit-Limit``, ``RateLimit-Remaining``,
  ``RateLimit-Reset`` (seconds until the window resets) and ``RateLimit-Policy``, after the
  IETF draft "RateLimit header fields for HTTP"; over the limit the answer is a JSON 429 in
  the API's error shape with ``Retry-After``.
* The sign-in throttle (``LOGIN_FAILURE_LIMIT``) counts sign-in attempts per username and
  client address, and forgets them when one succeeds: in effect, failures. Once they reach the
  limit, sign-in for that pair is refused with a 429, without checking the password, until the
  window has passed. The username is counted whether or not such an account exists, so the
  refusal reveals nothing about which names are real.

* The webhooks' limit (``WEBHOOK_RATE_LIMIT``) is one budget per presented webhook secret
  for the URLs tools post to (``/hooks/…``), counted and answered exactly as the API's.

The limiter is applied to the API's and the webhooks' blueprints from here (see
:func:`init_app`): their own modules know nothing about it.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time

from flask import Blueprint, Flask, Response, current_app, render_template, request
from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from flask_limiter import Limiter, RateLimitExceeded
from limits import RateLimitItem, parse_many
from limits.storage import MemoryStorage
from limits.strategies import STRATEGIES, RateLimiter

from notify_site.serialisers import error_response
from notify_site.services.api_keys import hash_key

log = logging.getLogger(__name__)

LIMITER = "notify_site.limiter"
LOGIN_THROTTLE = "notify_site.login_throttle"
LIMITED_BLUEPRINT = "notify_site.limited_blueprint"
API_SCOPE = "api"
HOOKS_SCOPE = "hooks"


class RateLimitConfigError(RuntimeError):
    """A rate-limit setting cannot be used; the message names the key."""


class SweepingMemoryStorage(MemoryStorage):
    """This process's memory, as ``memory://``, without a thread started per request.

    limits' ``MemoryStorage`` drops expired counters from a ``threading.Timer`` of 10 ms, and
    starts a new one on every count made after the last has finished: under steady load that
    is a thread started for almost every API request, and starting a thread waits for it to
    be scheduled — 1 to 4 ms per request on a busy machine (bench/README.md, "accept").
    Expired counters are already ignored when read (``get`` checks their expiry); here they
    are also swept from memory, inline, at most once per :attr:`SWEEP_SECONDS`.

    ``memory://`` (the default ``RATELIMIT_STORAGE_URI``) is served by this class.
    """

    STORAGE_SCHEME = ["notify-memory"]
    SWEEP_SECONDS = 1.0

    def __init__(self, uri: str | None = None, wrap_exceptions: bool = False, **options) -> None:
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)
        self._next_sweep = time.monotonic() + self.SWEEP_SECONDS
        self.sweeps = 0

    # MemoryStorage calls its private ``__schedule_expiry`` (name-mangled as below) on every
    # count; this replaces the timer with the inline sweep.
    def _MemoryStorage__schedule_expiry(self) -> None:
        now = time.monotonic()
        if now >= self._next_sweep:
            self._next_sweep = now + self.SWEEP_SECONDS
            self.sweeps += 1
            self._MemoryStorage__expire_events()


def storage_uri(configured: str | None) -> str:
    """The storage URI to give Flask-Limiter: ``memory://`` becomes the sweeping storage."""
    uri = configured or "memory://"
    if uri.startswith("memory://"):
        return "notify-memory://" + uri.removeprefix("memory://")
    return uri


def init_app(
    app: Flask, api_blueprint: Blueprint, hooks_blueprint: Blueprint | None = None
) -> None:
    """Create this app's limiter, limit ``api_blueprint`` per key and ``hooks_blueprint`` (the
    webhooks' URLs) per secret, and set up the throttle."""
    _parse_limits(app, "API_RATE_LIMIT")  # a typo fails at start-up, not at the first request
    if hooks_blueprint is not None:
        _parse_limits(app, "WEBHOOK_RATE_LIMIT")
    login_limits = _parse_limits(app, "LOGIN_FAILURE_LIMIT")
    # One limiter per app: Flask-Limiter keeps its storage on the Limiter object, and the
    # tests build many apps in one process, each with its own storage.
    limiter = Limiter(
        client_address,
        app=app,
        headers_enabled=False,
        storage_uri=storage_uri(app.config.get("RATELIMIT_STORAGE_URI")),
        storage_options=_default_storage_options(app.config.get("RATELIMIT_STORAGE_URI")),
    )
    app.extensions[LIMITER] = limiter
    app.extensions[LOGIN_THROTTLE] = LoginThrottle(
        limiter if limiter.enabled else None,
        login_limits,
        prefix=app.config.get("RATELIMIT_KEY_PREFIX") or "",
    )
    if not limiter.enabled:
        return
    # A shared limit with one scope: every endpoint of the blueprint spends the same budget.
    # (Decorating the blueprint records it in this limiter, not on the blueprint object.)
    api_limit = app.config["API_RATE_LIMIT"]
    limiter.shared_limit(api_limit, scope=API_SCOPE, key_func=api_key_identity)(api_blueprint)
    limited = {api_blueprint.name}
    if hooks_blueprint is not None:
        hooks_limit = app.config["WEBHOOK_RATE_LIMIT"]
        limiter.shared_limit(hooks_limit, scope=HOOKS_SCOPE, key_func=hook_identity)(
            hooks_blueprint
        )
        limited.add(hooks_blueprint.name)
    app.extensions[LIMITED_BLUEPRINT] = limited
    app.after_request(add_rate_limit_headers)


def _default_storage_options(uri: str | None) -> dict[str, float]:
    """Short timeouts for Redis, so a Redis that hangs cannot hang requests with it (then the
    in-memory fallback counts). ``RATELIMIT_STORAGE_OPTIONS`` overrides them."""
    if uri and uri.startswith(("redis://", "rediss://", "redis+")):
        return {"socket_timeout": 1.0, "socket_connect_timeout": 1.0}
    return {}


def _parse_limits(app: Flask, key: str) -> list[RateLimitItem]:
    value = app.config.get(key)
    try:
        return parse_many(value)
    except ValueError:
        raise RateLimitConfigError(
            f'{key} is not a rate limit: write it like "600 per minute" or "10/second;1000/hour"'
        ) from None


def limiter() -> Limiter:
    """This app's Flask-Limiter object."""
    return current_app.extensions[LIMITER]


def client_address() -> str:
    """The client's address (after ProxyFix, when proxies are trusted)."""
    return request.remote_addr or "unknown"


def api_key_identity() -> str:
    """Whose budget an API request spends: the presented key's SHA-256, else the address.

    Parsed as the API parses ``Authorization`` (``Bearer <key>``), so the bucket is the key's
    whether or not the key turns out to be valid; the key itself is never stored.
    """
    scheme, _, credentials = request.headers.get("Authorization", "").strip().partition(" ")
    credentials = credentials.strip()
    if scheme.lower() == "bearer" and credentials:
        return "key:" + hash_key(credentials)
    return "addr:" + client_address()


def hook_identity() -> str:
    """Whose budget a post to a webhook spends: the presented secret's SHA-256 (from the path
    or ``Authorization: Bearer``), else the address; like :func:`api_key_identity`, a wrong
    secret spends a budget of its own, never the webhook's."""
    secret = (request.view_args or {}).get("secret")
    if not secret:
        scheme, _, credentials = request.headers.get("Authorization", "").strip().partition(" ")
        secret = credentials.strip() if scheme.lower() == "bearer" else ""
    if secret:
        return "hook:" + hash_key(secret)
    return "addr:" + client_address()


def _in_limited_blueprint() -> bool:
    names = current_app.extensions.get(LIMITED_BLUEPRINT) or ()
    return request.blueprint in names


def _seconds_until(timestamp: float) -> int:
    return max(0, math.ceil(timestamp - time.time()))


def add_rate_limit_headers(response: Response) -> Response:
    """The IETF draft's RateLimit fields on every answer of the limited blueprint."""
    if not _in_limited_blueprint():
        return response
    current = limiter().current_limit
    if current is None:
        return response
    try:
        reset_time, remaining = current.window
    except limiter().storage.base_exceptions:
        log.warning("rate-limit storage unreachable; answering without RateLimit headers")
        return response
    item = current.limit
    response.headers["RateLimit-Limit"] = str(item.amount)
    response.headers["RateLimit-Remaining"] = str(0 if current.breached else remaining)
    response.headers["RateLimit-Reset"] = str(_seconds_until(reset_time))
    response.headers["RateLimit-Policy"] = f"{item.amount};w={item.get_expiry()}"
    return response


def rate_limited(error: RateLimitExceeded):
    """429: JSON in the API's error shape on the API, the error page anywhere else."""
    current = limiter().current_limit
    retry_after = 1
    if current is not None:
        try:
            retry_after = max(1, _seconds_until(current.window.reset_time))
        except limiter().storage.base_exceptions:
            retry_after = error.limit.limit.get_expiry()
    limit = error.limit.limit
    message = _limit_message(limit, retry_after)
    if _in_limited_blueprint():
        response = error_response(429, "rate_limited", message)
    else:
        response = current_app.make_response(
            (render_template("errors/error.html", status=429, message=message), 429)
        )
    response.headers["Retry-After"] = str(retry_after)
    return response


# A window's unit, alone ("per minute") and counted ("per 10 minutes"), in the page's language
# (on the API: the Accept-Language's). The JSON ``code`` stays ``rate_limited``.
_UNITS = {
    "second": (_l("second"), _l("seconds")),
    "minute": (_l("minute"), _l("minutes")),
    "hour": (_l("hour"), _l("hours")),
    "day": (_l("day"), _l("days")),
    "month": (_l("month"), _l("months")),
    "year": (_l("year"), _l("years")),
}


def _limit_message(item: RateLimitItem, retry_after: int) -> str:
    granularity = item.GRANULARITY.name
    one, many = _UNITS.get(granularity, (granularity, f"{granularity}s"))
    if item.multiples == 1:
        return gettext(
            "Too many requests: the limit is %(amount)s per %(unit)s. "
            "Retry after %(seconds)s seconds.",
            amount=item.amount,
            unit=str(one),
            seconds=retry_after,
        )
    return gettext(
        "Too many requests: the limit is %(amount)s per %(count)s %(units)s. "
        "Retry after %(seconds)s seconds.",
        amount=item.amount,
        count=item.multiples,
        units=str(many),
        seconds=retry_after,
    )


# ---------------------------------------------------------------------------- sign-in


class LoginThrottle:
    """Counts failed sign-ins per username and address, in the limiter's storage.

    Neither the username nor the address is stored: the counter's key is a hash of both. When
    the storage cannot be reached, the counts are kept in this process's memory until it is
    back, so a Redis outage neither locks everyone out nor switches the throttle off.
    """

    def __init__(self, limiter: Limiter | None, limits: list[RateLimitItem], *, prefix: str):
        self._limiter = limiter
        self._limits = limits
        self._prefix = prefix or "notify_site"
        self._fallback: RateLimiter | None = None

    def _identifiers(self, username: str, address: str) -> tuple[str, ...]:
        who = f"{username.strip().casefold()}\0{address}"
        return self._prefix, "login-failures", hashlib.sha256(who.encode()).hexdigest()

    def _run(self, limiter: Limiter, operation):
        try:
            return operation(limiter.limiter)
        except limiter.storage.base_exceptions as error:
            log.warning(
                "rate-limit storage unreachable (%s); counting sign-in failures in memory",
                type(error).__name__,
            )
            if self._fallback is None:
                strategy = current_app.config.get("RATELIMIT_STRATEGY", "fixed-window")
                self._fallback = STRATEGIES[strategy](SweepingMemoryStorage())
            return operation(self._fallback)

    def attempt(self, username: str, address: str) -> int:
        """Count a sign-in attempt; 0 if it may go ahead, else the seconds the pair must wait.

        The attempt is counted *before* the password is checked (one atomic increment), so
        guesses sent in parallel cannot all slip in under the limit. A successful sign-in then
        calls :meth:`succeeded`, which forgets the count: only failures add up.
        """
        if self._limiter is None:
            return 0
        ids = self._identifiers(username, address)

        def hit(strategy: RateLimiter) -> int:
            seconds = 0
            for item in self._limits:
                if not strategy.hit(item, *ids):
                    reset_time = strategy.get_window_stats(item, *ids).reset_time
                    seconds = max(seconds, _seconds_until(reset_time), 1)
            return seconds

        return self._run(self._limiter, hit)

    def succeeded(self, username: str, address: str) -> None:
        """Forget this pair's failures: a person who mistyped starts afresh once in."""
        if self._limiter is None:
            return
        ids = self._identifiers(username, address)
        self._run(
            self._limiter, lambda strategy: [strategy.clear(item, *ids) for item in self._limits]
        )


def login_throttle() -> LoginThrottle:
    """This app's sign-in throttle."""
    return current_app.extensions[LOGIN_THROTTLE]
