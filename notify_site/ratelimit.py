"""Rate limits (SPEC 4.7): a per-key limit on the JSON API and the webhooks, and a sign-in
throttle.

Both count in this process's memory by default, or in Redis when ``RATELIMIT_STORAGE_URI``
names one, so that every web process and machine shares one count.

* The API limit (``API_RATE_LIMIT``) is one budget per API key for every ``/api/v1`` endpoint
  together. A key is identified by the SHA-256 of the key presented (the same hash the database
  keeps, computed once: the API's authentication reuses it), never by the client's address:
  one key used from many addresses has one budget, and keys used from behind one NAT have one
  each. Requests that present no key are counted per address. Every API answer carries
  ``RateLimit-Limit``, ``RateLimit-Remaining``, ``RateLimit-Reset`` (seconds until the window
  resets) and ``RateLimit-Policy``, after the IETF draft "RateLimit header fields for HTTP";
  over the limit the answer is a JSON 429 in the API's error shape with ``Retry-After``.
* The webhooks' limit (``WEBHOOK_RATE_LIMIT``) is one budget per presented webhook secret
  for the URLs tools post to (``/hooks/…``), counted and answered exactly as the API's.
* The sign-in throttle (``LOGIN_FAILURE_LIMIT``) counts sign-in attempts per username and
  client address, and forgets them when one succeeds: in effect, failures. Once they reach the
  limit, sign-in for that pair is refused with a 429, without checking the password, until the
  window has passed. The username is counted whether or not such an account exists, so the
  refusal reveals nothing about which names are real.

**What a request costs.** The per-key limit is checked by one app-wide ``before_request``
hook, with no per-request work to find which limits apply (they are parsed once, at start).
With the default fixed window, a request is one count: in memory, an increment under a lock
(:class:`KeyWindows`); with Redis, **one round trip** — a Lua script that increments the
window's counter, starts its expiry when new and returns the count and the time left
(:class:`RedisWindows`). Other strategies (``RATELIMIT_STRATEGY``) count through the ``limits``
library's strategies, as the sign-in throttle does.

**When Redis is unreachable** the limit *fails open to this process*: requests are not refused
for it, and each process counts in its own memory meanwhile (logged as a warning: "falling back
to in-memory counting"), so the limit still holds per process — a key may then make up to one
budget per process. Redis is tried again a second later. With
``RATELIMIT_IN_MEMORY_FALLBACK_ENABLED`` false the limit *fails closed* instead: the API
answers 503 until Redis is back.

Past 400 lines on purpose: one idea, counting calls per key; the memory and Redis
counters share the window rules and the headers, so they stay in one module.
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import redis
from flask import Blueprint, Flask, Response, current_app, g, request
from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from limits import RateLimitItem, parse_many
from limits.storage import MemoryStorage, Storage, storage_from_string
from limits.strategies import STRATEGIES, RateLimiter

from notify_site.serialisers import error_response
from notify_site.services.api_keys import hash_key

log = logging.getLogger(__name__)

KEY_LIMITS = "notify_site.key_limits"
LOGIN_THROTTLE = "notify_site.login_throttle"
API_SCOPE = "api"
HOOKS_SCOPE = "hooks"
#: Where the API's fast path leaves the counts of a request it counted and then left to Flask.
COUNTED_ENVIRON_KEY = "notify_site.key_limit_counts"
#: After Redis failed, how long requests count in memory before Redis is tried again.
REDIS_RETRY_SECONDS = 1.0


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
    """The storage URI to give ``limits``: ``memory://`` becomes the sweeping storage."""
    uri = configured or "memory://"
    if uri.startswith("memory://"):
        return "notify-memory://" + uri.removeprefix("memory://")
    return uri


def _is_redis(uri: str | None) -> bool:
    return bool(uri) and uri.startswith(("redis://", "rediss://", "unix://"))


# ---------------------------------------------------------------------------- counting


@dataclass(frozen=True)
class Count:
    """One limit's state after a request was counted: how many in the window, when it resets
    (epoch seconds)."""

    item: RateLimitItem
    count: int
    reset_at: float

    @property
    def remaining(self) -> int:
        return max(0, self.item.amount - self.count)

    @property
    def breached(self) -> bool:
        return self.count > self.item.amount


class KeyWindows:
    """Fixed windows in this process's memory: one increment per limit, under one lock."""

    def __init__(self) -> None:
        self.storage = SweepingMemoryStorage()

    def hit(self, keys: list[tuple[str, RateLimitItem]]) -> list[Count]:
        storage = self.storage
        counts = []
        for key, item in keys:
            count = storage.incr(key, item.get_expiry())
            counts.append(Count(item, count, storage.get_expiry(key)))
        return counts


# Every window's counter incremented, its expiry started when it is new, and the count and the
# milliseconds left returned: one round trip however many limits. (INCR then PEXPIRE only when
# the counter is new is limits' own fixed window; here the TTL comes back in the same call.)
_HIT_SCRIPT = """
local result = {}
for i, key in ipairs(KEYS) do
  local count = redis.call('INCR', key)
  if count == 1 then redis.call('PEXPIRE', key, ARGV[i]) end
  local ttl = redis.call('PTTL', key)
  if ttl < 0 then redis.call('PEXPIRE', key, ARGV[i]); ttl = tonumber(ARGV[i]) end
  result[#result + 1] = count
  result[#result + 1] = ttl
end
return result
"""


class RedisWindows:
    """Fixed windows in Redis, shared by every process: one Lua script per request."""

    def __init__(self, uri: str, options: dict) -> None:
        self.client = redis.Redis.from_url(uri, **options)
        self._script = self.client.register_script(_HIT_SCRIPT)

    def hit(self, keys: list[tuple[str, RateLimitItem]]) -> list[Count]:
        values = self._script(
            keys=[key for key, _ in keys], args=[item.get_expiry() * 1000 for _, item in keys]
        )
        now = time.time()
        return [
            Count(item, int(values[2 * n]), now + int(values[2 * n + 1]) / 1000)
            for n, (_, item) in enumerate(keys)
        ]


class StrategyWindows:
    """Any of the ``limits`` library's strategies (moving window, sliding window counter),
    in the configured storage: a hit and a look at the window per limit."""

    def __init__(self, strategy: RateLimiter) -> None:
        self.strategy = strategy

    def hit(self, keys: list[tuple[str, RateLimitItem]]) -> list[Count]:
        counts = []
        for key, item in keys:
            allowed = self.strategy.hit(item, key)
            stats = self.strategy.get_window_stats(item, key)
            # A refused hit is not recorded by these strategies: count it as one over.
            count = item.amount - stats.remaining if allowed else item.amount + 1
            counts.append(Count(item, count, stats.reset_time))
        return counts


class RateLimitUnavailableError(Exception):
    """The shared storage cannot be reached and the limit fails closed."""


class KeyLimits:
    """The per-key limits of one app: which blueprints, which limits, where they count."""

    def __init__(self, app: Flask, limits: dict[str, list[RateLimitItem]]) -> None:
        uri = app.config.get("RATELIMIT_STORAGE_URI")
        strategy = app.config.get("RATELIMIT_STRATEGY") or "fixed-window"
        if strategy not in STRATEGIES:
            raise RateLimitConfigError(f"RATELIMIT_STRATEGY must be one of {sorted(STRATEGIES)}")
        options = {**_default_storage_options(uri), **app.config["RATELIMIT_STORAGE_OPTIONS"]}
        self.limits = limits  # blueprint name -> its limits
        self._suffixes = {
            scope: [
                (f"{item.amount}/{item.multiples}/{item.GRANULARITY.name}", item) for item in items
            ]
            for scope, items in limits.items()
        }
        self.prefix = app.config.get("RATELIMIT_KEY_PREFIX") or "notify_site"
        self.fallback_enabled = app.config.get("RATELIMIT_IN_MEMORY_FALLBACK_ENABLED", True)
        self.memory = KeyWindows()
        self.shared: KeyWindows | RedisWindows | StrategyWindows
        if strategy != "fixed-window":
            storage = storage_from_string(storage_uri(uri), **options)
            self.shared = StrategyWindows(STRATEGIES[strategy](storage))
            self.failures: tuple[type[Exception], ...] = storage.base_exceptions
            self.memory_strategy = StrategyWindows(STRATEGIES[strategy](SweepingMemoryStorage()))
        elif _is_redis(uri):
            self.shared = RedisWindows(uri, options)
            self.failures = (redis.RedisError, OSError)
            self.memory_strategy = self.memory
        else:
            self.shared = self.memory
            self.failures = ()
            self.memory_strategy = self.memory
        self._shared_down_until = 0.0
        self._lock = threading.Lock()

    def hit(self, scope: str, identity: str) -> list[Count]:
        keys = [
            (f"{self.prefix}/{scope}/{identity}/{suffix}", item)
            for suffix, item in self._suffixes[scope]
        ]
        if self.shared is self.memory or time.monotonic() < self._shared_down_until:
            if self.shared is not self.memory and not self.fallback_enabled:
                raise RateLimitUnavailableError
            return self.memory_strategy.hit(keys)
        try:
            return self.shared.hit(keys)
        except self.failures as error:
            with self._lock:
                self._shared_down_until = time.monotonic() + REDIS_RETRY_SECONDS
            if not self.fallback_enabled:
                log.warning("rate-limit storage unreachable (%s); refusing", type(error).__name__)
                raise RateLimitUnavailableError from None
            log.warning(
                "rate-limit storage unreachable (%s); falling back to in-memory counting",
                type(error).__name__,
            )
            return self.memory_strategy.hit(keys)


# ---------------------------------------------------------------------------- set-up


def init_app(
    app: Flask, api_blueprint: Blueprint, hooks_blueprint: Blueprint | None = None
) -> None:
    """Limit ``api_blueprint`` per key and ``hooks_blueprint`` (the webhooks' URLs) per
    secret, and set up the throttle."""
    limits = {api_blueprint.name: _parse_limits(app, "API_RATE_LIMIT")}
    identities: dict[str, Callable[[], str]] = {api_blueprint.name: api_key_identity}
    if hooks_blueprint is not None:
        limits[hooks_blueprint.name] = _parse_limits(app, "WEBHOOK_RATE_LIMIT")
        identities[hooks_blueprint.name] = hook_identity
    login_limits = _parse_limits(app, "LOGIN_FAILURE_LIMIT")
    enabled = bool(app.config.get("RATELIMIT_ENABLED", True))
    app.extensions[LOGIN_THROTTLE] = LoginThrottle(
        _login_strategy(app) if enabled else None,
        login_limits,
        prefix=app.config.get("RATELIMIT_KEY_PREFIX") or "",
    )
    if not enabled:
        return
    key_limits = KeyLimits(app, limits)
    app.extensions[KEY_LIMITS] = key_limits

    def check_key_limit() -> Response | None:
        identity = identities.get(request.blueprint)  # type: ignore[arg-type]
        if identity is None:
            return None
        try:
            # Counted already when the API's fast path saw the request first and left it to
            # Flask (notify_site/api/fast_accept.py): a request is counted once.
            counts = request.environ.get(COUNTED_ENVIRON_KEY) or key_limits.hit(
                request.blueprint,  # type: ignore[arg-type]
                identity(),
            )
        except RateLimitUnavailableError:
            return error_response(
                503,
                "service_unavailable",
                gettext("Rate limiting is unavailable. Nothing was done; retry in a few seconds."),
            )
        g.rate_limit = shown = shown_count(counts)
        if shown.breached:
            return rate_limited(shown)
        return None

    app.before_request(check_key_limit)
    app.after_request(add_rate_limit_headers)


def _login_strategy(app: Flask) -> tuple[RateLimiter, tuple[type[Exception], ...]]:
    uri = app.config.get("RATELIMIT_STORAGE_URI")
    options = {**_default_storage_options(uri), **app.config["RATELIMIT_STORAGE_OPTIONS"]}
    storage: Storage = storage_from_string(storage_uri(uri), **options)
    strategy = app.config.get("RATELIMIT_STRATEGY") or "fixed-window"
    return STRATEGIES[strategy](storage), storage.base_exceptions


def _default_storage_options(uri: str | None) -> dict[str, float]:
    """Short timeouts for Redis, so a Redis that hangs cannot hang requests with it (then the
    in-memory fallback counts). ``RATELIMIT_STORAGE_OPTIONS`` overrides them."""
    if _is_redis(uri) or (uri and uri.startswith("redis+")):
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


def key_limits() -> KeyLimits | None:
    """This app's per-key limits (None when rate limits are off)."""
    return current_app.extensions.get(KEY_LIMITS)


def client_address() -> str:
    """The client's address (after ProxyFix, when proxies are trusted)."""
    return request.remote_addr or "unknown"


def api_key_identity() -> str:
    """Whose budget an API request spends: the presented key's SHA-256, else the address.

    Parsed as the API parses ``Authorization`` (``Bearer <key>``), so the bucket is the key's
    whether or not the key turns out to be valid; the key itself is never stored. The hash is
    kept in ``g.presented_key_hash`` for the API's authentication, which needs the same one.
    """
    scheme, _, credentials = request.headers.get("Authorization", "").strip().partition(" ")
    credentials = credentials.strip()
    if scheme.lower() == "bearer" and credentials:
        digest = hash_key(credentials)
        g.presented_key_hash = (credentials, digest)
        return "key:" + digest
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


def _seconds_until(timestamp: float) -> int:
    return max(0, math.ceil(timestamp - time.time()))


def add_rate_limit_headers(response: Response) -> Response:
    """The IETF draft's RateLimit fields on every answer of a limited blueprint."""
    shown: Count | None = g.get("rate_limit")
    if shown is None:
        return response
    for name, value in rate_limit_headers(shown):
        response.headers[name] = value
    return response


def shown_count(counts: list[Count]) -> Count:
    """The count the headers describe: the limit closest to running out."""
    return min(counts, key=lambda c: (not c.breached, c.remaining))


def rate_limit_headers(shown: Count) -> list[tuple[str, str]]:
    """The RateLimit fields for ``shown`` (see :func:`shown_count`)."""
    item = shown.item
    return [
        ("RateLimit-Limit", str(item.amount)),
        ("RateLimit-Remaining", str(shown.remaining)),
        ("RateLimit-Reset", str(_seconds_until(shown.reset_at))),
        ("RateLimit-Policy", f"{item.amount};w={item.get_expiry()}"),
    ]


def rate_limited(shown: Count) -> Response:
    """429 in the API's JSON error shape, with ``Retry-After``."""
    retry_after = max(1, _seconds_until(shown.reset_at))
    response = error_response(429, "rate_limited", _limit_message(shown.item, retry_after))
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

    def __init__(
        self,
        limiter: tuple[RateLimiter, tuple[type[Exception], ...]] | None,
        limits: list[RateLimitItem],
        *,
        prefix: str,
    ):
        self._limiter = limiter
        self._limits = limits
        self._prefix = prefix or "notify_site"
        self._fallback: RateLimiter | None = None

    def _identifiers(self, username: str, address: str) -> tuple[str, ...]:
        who = f"{username.strip().casefold()}\0{address}"
        return self._prefix, "login-failures", hashlib.sha256(who.encode()).hexdigest()

    def _run(self, limiter: tuple[RateLimiter, tuple[type[Exception], ...]], operation):
        strategy, failures = limiter
        try:
            return operation(strategy)
        except failures as error:
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
