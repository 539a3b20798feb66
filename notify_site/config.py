"""Configuration: defaults, generated secrets, ``instance/config.py``, then the environment.

Order of precedence, lowest first:

1. :data:`DEFAULTS` below;
2. ``instance/secrets.json`` — secrets this module generates on first run (mode 0600);
3. ``instance/config.py``;
4. environment variables ``NOTIFY_SITE_<KEY>`` (values are parsed as JSON when they can be,
   so ``NOTIFY_SITE_RELAY_ENABLED=false`` is a boolean), plus the conventional ``DATABASE_URL``;
5. the ``test_config`` mapping given to :func:`notify_site.create_app`.

Every key is described in ``instance/config.example.py``.

Past 400 lines on purpose: one idea, the configuration; most lines are the commented
defaults, which read best as one table.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import tempfile
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet
from flask import Flask

from notify_site.instance_files import make_private_dir
from notify_site.notify_content import IMAGE_MAX_BYTES

SECRETS_FILE = "secrets.json"

DEFAULTS: dict[str, Any] = {
    # Flask session signing; generated into instance/secrets.json when not configured.
    "SECRET_KEY": None,
    # The token key ring, newest first: a list of "key-id:fernet-key" strings (or one string
    # with commas between them). Generated when not configured.
    "TOKEN_KEYS": None,
    # The Notify server the site talks to. The built-in relay by default.
    "NOTIFY_BOT_ORIGIN": "http://127.0.0.1:5000/relay",
    "NOTIFY_API_ORIGIN": "http://127.0.0.1:5000/relay",
    "NOTIFY_CLIENT_ID": None,
    "NOTIFY_CLIENT_SECRET": None,
    "NOTIFY_REDIRECT_URI": "http://127.0.0.1:5000/callback",
    # Seconds before an outbound call to the Notify server gives up.
    "NOTIFY_TIMEOUT": 10,
    # Seconds an OAuth state stays valid (RFC 6819: short-lived, single-use).
    "OAUTH_STATE_TTL": 3600,
    # The built-in relay (SPEC 5).
    "RELAY_ENABLED": True,
    "RELAY_URL_PREFIX": "/relay",
    "RELAY_RATE_LIMIT": 1000,
    "RELAY_IMAGE_RATE_LIMIT": 50,
    "RELAY_RATE_WINDOW": 3600,
    "RELAY_CODE_TTL": 600,
    "RELAY_SANDBOX_USER": "Sandbox user",
    "RELAY_SANDBOX_GROUPS": ["Family", "Team alerts"],
    "RELAY_IMAGE_MAX_BYTES": IMAGE_MAX_BYTES,  # the site checks its own sends against the same
    # Real LINE delivery (the relay's channel mode; README "Real LINE delivery"). With a channel
    # id and secret plus a token source, the relay delivers through the Messaging API instead
    # of the sandbox inbox. Token source: a channel access token given as it is, or a private
    # key (an RSA JWK, JSON, with the "kid" the LINE console gave) from which the relay issues
    # v2.1 tokens of RELAY_LINE_TOKEN_EXP seconds, renewed RELAY_LINE_TOKEN_RENEW_BEFORE
    # seconds before they expire.
    "RELAY_LINE_CHANNEL_ID": None,
    "RELAY_LINE_CHANNEL_SECRET": None,
    "RELAY_LINE_CHANNEL_ACCESS_TOKEN": None,
    "RELAY_LINE_PRIVATE_KEY_JWK": None,
    "RELAY_LINE_TOKEN_EXP": 30 * 24 * 3600,
    "RELAY_LINE_TOKEN_RENEW_BEFORE": 3 * 24 * 3600,
    # Where the Messaging API is (tests point these at a fake); the data base serves content.
    "RELAY_LINE_API_BASE_URL": "https://api.line.me",
    "RELAY_LINE_API_DATA_BASE_URL": "https://api-data.line.me",
    "RELAY_LINE_TIMEOUT": 10,
    # The bot's basic id ("@123abcde") and its add-friend link (derived from the id if unset).
    "RELAY_LINE_BOT_BASIC_ID": None,
    "RELAY_LINE_ADD_FRIEND_URL": None,
    # Seconds a pairing code shown on the consent page stays usable.
    "RELAY_LINE_PAIRING_TTL": 600,
    # Pushes: the same retry policy as the site's deliveries (notify_site/outbox.py), a 429
    # counting as an attempt; given up well inside the 24 h LINE keeps a retry key, so a late
    # retry can never send twice.
    "RELAY_LINE_RETRY_BASE": 15,
    "RELAY_LINE_RETRY_CAP": 900,
    "RELAY_LINE_MAX_ATTEMPTS": 8,
    "RELAY_LINE_MAX_AGE_HOURS": 20,
    # After LINE's monthly-limit 429 the channel pauses (relay/line/monthly_limit.py): no push
    # goes out, new Notify calls get 429 at once, and the quota is read again every this many
    # minutes and at the start of LINE's billing month (RELAY_LINE_BILLING_TZ, below).
    "RELAY_LINE_MONTHLY_RECHECK_MINUTES": 15,
    # Seconds /relay/api/notify waits for LINE's answer to the push it queued (channel mode):
    # LINE's 200, 400 or monthly 429 passes through; past it (or on a 5xx) the answer is 200
    # with "delivery": "pending" and a messageId (relay/line/sync_delivery.py). 0: never wait.
    "RELAY_LINE_SYNC_WAIT_SECONDS": 5,
    # LINE's monthly quota (README "LINE's monthly quota"): the billing month's time zone
    # (LINE names none; Japan time is assumed, relay/line/cost.py), seconds between reads of
    # LINE's quota and consumption, and the chat that gets the 80 %/100 % notices (a LINE
    # user/group/room id in channel mode; in the sandbox, a sandbox chat's name; None: none).
    "RELAY_LINE_BILLING_TZ": "Asia/Tokyo",
    "RELAY_LINE_QUOTA_REFRESH_SECONDS": 300,
    "RELAY_QUOTA_NOTICE_CHAT": None,
    # Pack a chat's queued pushes into one request (≤ 5 message objects; relay/line/packing.py).
    "RELAY_LINE_PACKING": True,
    # Seconds each new push waits to gather the chat's next ones into it (0: no waiting).
    "RELAY_LINE_DIGEST_SECONDS": 0,
    # The sandbox's stand-ins for LINE's figures: the channel's monthly quota and the member
    # count of each sandbox group (a push to a group costs one unit per member).
    "RELAY_SANDBOX_MONTHLY_QUOTA": 200,
    "RELAY_SANDBOX_GROUP_MEMBERS": 5,
    # The relay's public HTTPS base URL (e.g. "https://notify.example/relay"): uploaded images
    # are served to LINE from here. Required in channel mode, and HTTPS unless
    # RELAY_LINE_ALLOW_HTTP_PUBLIC_URL (development only: LINE then refuses uploaded images).
    "RELAY_PUBLIC_BASE_URL": None,
    "RELAY_LINE_ALLOW_HTTP_PUBLIC_URL": False,
    # Delivery workers (SPEC 4.4).
    # Threads per worker process: how many connections one worker delivers to at once.
    "WORKER_THREADS": 8,
    # Seconds between looks at the queue when it is empty.
    "WORKER_POLL_INTERVAL": 1.0,
    # Seconds a claim lasts before another worker may take the rows over.
    "WORKER_LEASE_SECONDS": 60,
    # Rows of one connection claimed at a time.
    "WORKER_BATCH_SIZE": 20,
    # Retries: full-jitter backoff from 0..base·2ⁿ⁻¹ seconds, capped; then failed. The base is
    # wide enough that a thousand rows failing together come back < 10 % in any one second
    # even though failing them takes the workers seconds (`make chaos`; 15 gave 10–13 %).
    "DELIVERY_RETRY_BASE": 60,
    "DELIVERY_RETRY_CAP": 900,
    "DELIVERY_MAX_ATTEMPTS": 8,
    "DELIVERY_MAX_AGE_HOURS": 24,
    # Seconds between asking a Notify server about a notification it answered "pending"
    # (this site's relay in channel mode; services/remote_pending.py).
    "DELIVERY_FOLLOW_SECONDS": 30,
    # Incoming webhooks (SPEC 8). Repeats of one alert group in one state within this many
    # seconds queue once (each webhook may change it); posts per presented secret, as the
    # API's limit counts per key; the largest body a webhook reads (over it: 413).
    "WEBHOOK_DEDUPE_SECONDS": 300,
    "WEBHOOK_RATE_LIMIT": "120 per minute",
    "WEBHOOK_MAX_BODY_BYTES": 1024 * 1024,
    # Scheduled sends (SPEC 9). An occurrence missed while no worker ran is sent when one comes
    # back if it is at most this many seconds old, else recorded as skipped.
    "SCHEDULE_CATCH_UP_SECONDS": 3600,
    # Schedules one worker claims per round, and occurrences of one schedule handled per round.
    "SCHEDULE_CLAIM_BATCH": 50,
    "SCHEDULE_OCCURRENCES_PER_ROUND": 100,
    # Housekeeping (issue 20; notify_site/services/housekeeping.py): finished notifications
    # (delivered, failed, cancelled) older than this many days are deleted with their
    # delivery attempts; None or 0 keeps them all (the default). Idempotency-Key records
    # always expire after 24 hours. Seconds between two housekeeping rounds of a worker.
    "NOTIFICATION_RETENTION_DAYS": None,
    "HOUSEKEEPING_INTERVAL": 600,
    # Accounts.
    "REGISTRATION_OPEN": True,
    # Sign in with LINE (README "Sign in with LINE"): on when a LINE Login channel's id and
    # secret are set. Its authorize page is under LINE_LOGIN_ORIGIN; its token, profile and
    # friendship endpoints under RELAY_LINE_API_BASE_URL (api.line.me), as LINE serves them.
    # The callback URL registered in the console (None: this site's /login/line/callback).
    # LINE_LOGIN_BOT_PROMPT "normal" or "aggressive" offers adding the relay's bot as a friend
    # (the channel must be linked to the bot, under the same provider); None offers nothing.
    "LINE_LOGIN_CHANNEL_ID": None,
    "LINE_LOGIN_CHANNEL_SECRET": None,
    "LINE_LOGIN_ORIGIN": "https://access.line.me",
    "LINE_LOGIN_REDIRECT_URI": None,
    "LINE_LOGIN_BOT_PROMPT": None,
    "LINE_LOGIN_TIMEOUT": 10,
    # How passwords are hashed (werkzeug's generate_password_hash methods): "scrypt" or
    # "scrypt:N:r:p", "pbkdf2:sha256:ITERATIONS". Slow on purpose. Anything cheaper than
    # scrypt's N=2**15 or PBKDF2's 600,000 iterations is refused unless TESTING is on (the
    # test suite hashes cheaply: it makes thousands of accounts).
    "PASSWORD_HASH_METHOD": "scrypt",
    # Database: SQLite in instance/ unless DATABASE_URL is given.
    "DATABASE_URL": None,
    "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
    # Web hygiene (SPEC 4.7).
    "MAX_CONTENT_LENGTH": 12 * 1024 * 1024,
    # Seconds a sign-in lasts after the last visit (each request renews the cookie). A session
    # also ends at sign-out, a password change, or when an admin disables the account.
    "PERMANENT_SESSION_LIFETIME": 7 * 24 * 3600,
    "SESSION_COOKIE_HTTPONLY": True,
    "SESSION_COOKIE_SAMESITE": "Lax",
    # None: decided from the scheme of NOTIFY_REDIRECT_URI (Secure whenever the site is HTTPS).
    "SESSION_COOKIE_SECURE": None,
    "REMEMBER_COOKIE_HTTPONLY": True,
    "REMEMBER_COOKIE_SAMESITE": "Lax",
    "WTF_CSRF_TIME_LIMIT": 3600,
    # Host header values the site answers to (Flask's own key), e.g. ["notify.example.com"];
    # a leading dot also allows subdomains. Anything else gets a 400. None: not restricted,
    # which suits local development; set it in production. With the built-in relay on another
    # host name (as in the tests: 127.0.0.1 and localhost), list both.
    "TRUSTED_HOSTS": None,
    # Strict-Transport-Security, sent only on requests that arrived over HTTPS (directly, or
    # through a proxy trusted by PROXY_FIX_X_PROTO below).
    "HSTS_MAX_AGE": 31536000,
    "HSTS_INCLUDE_SUBDOMAINS": True,
    # Behind reverse proxies (werkzeug's ProxyFix): how many proxies in front of the site set
    # each X-Forwarded-* header. 0 trusts none, so a client cannot forge its address or scheme
    # by sending these headers itself. Behind one nginx: PROXY_FIX_X_FOR = PROXY_FIX_X_PROTO = 1.
    "PROXY_FIX_X_FOR": 0,
    "PROXY_FIX_X_PROTO": 0,
    "PROXY_FIX_X_HOST": 0,
    "PROXY_FIX_X_PORT": 0,
    "PROXY_FIX_X_PREFIX": 0,
    # Rate limits (the limits library; notify_site/ratelimit.py). A limit is a string such as
    # "600 per minute" or "10/second;1000/hour".
    # Requests one API key may make to /api/v1, all endpoints together. Requests without a key
    # are counted per client address.
    "API_RATE_LIMIT": "600 per minute",
    # The plain POST /api/v1/notifications (JSON, one connection, with or without an
    # Idempotency-Key; no send_at, no file) is answered before Flask, in one read and one
    # shared write (notify_site/api/fast_accept.py). False sends everything the general way
    # (the answers are the same).
    "API_FAST_ACCEPT": True,
    # The fast path's rows of concurrent requests in one process share one transaction and
    # one commit (services/group_commit.py); each 202 still waits for its row's commit.
    # The window is how long the writer waits for more rows after the first, once the last
    # commit was shared (a lone request never waits; 0: only those already waiting).
    "GROUP_COMMIT": True,
    "GROUP_COMMIT_WINDOW_MS": 2,
    # Failed sign-ins allowed for one username from one address before sign-in is refused
    # for that pair until the window has passed.
    "LOGIN_FAILURE_LIMIT": "5 per 15 minutes",
    # False turns every rate limit off (the API's and the sign-in throttle).
    "RATELIMIT_ENABLED": True,
    # Where the counters live. memory:// is per process: with several processes or machines
    # use Redis, e.g. "redis://127.0.0.1:6379/0", so that they share one count.
    "RATELIMIT_STORAGE_URI": "memory://",
    # Options for the storage (for Redis: redis-py's, on top of 1-second socket timeouts).
    "RATELIMIT_STORAGE_OPTIONS": {},
    # fixed-window, moving-window or sliding-window-counter (see the limits library).
    "RATELIMIT_STRATEGY": "fixed-window",
    # Prepended to every counter's key, so that several sites can share one Redis.
    "RATELIMIT_KEY_PREFIX": "notify_site",
    # When the storage (Redis) cannot be reached, count in this process's memory until it is
    # back (the limit then holds per process), instead of refusing the request. False: the API
    # and the webhooks answer 503 until Redis is back (the sign-in throttle still counts in
    # memory).
    "RATELIMIT_IN_MEMORY_FALLBACK_ENABLED": True,
    # Metrics (notify_site/metrics.py). The bearer token Prometheus must send to GET /metrics
    # (and to a worker's metrics port). None: /metrics answers 404, as if it did not exist.
    "METRICS_TOKEN": None,
    # A delivery worker serves its own metrics on this port (None: it does not); the address
    # it listens on. Needs METRICS_TOKEN.
    "WORKER_METRICS_PORT": None,
    "WORKER_METRICS_HOST": "127.0.0.1",
}


class ConfigError(RuntimeError):
    """The configuration cannot work; the message says which key and why."""


def load_config(app: Flask, test_config: dict[str, Any] | None) -> None:
    """Fill ``app.config`` in the documented order and derive the computed keys."""
    app.config.from_mapping(DEFAULTS)
    app.config.update(port_defaults(os.environ.get("PORT")))
    generated = _read_secrets_file(app)
    app.config.update(generated)
    app.config.from_pyfile("config.py", silent=True)
    app.config.from_prefixed_env("NOTIFY_SITE")
    if os.environ.get("DATABASE_URL"):
        app.config["DATABASE_URL"] = os.environ["DATABASE_URL"]
    if test_config:
        app.config.update(test_config)

    missing = [key for key in ("SECRET_KEY", "TOKEN_KEYS") if not app.config.get(key)]
    if missing:
        generated = ensure_secrets(app)
        for key in missing:
            app.config[key] = generated[key]

    app.config["TOKEN_KEYS"] = parse_key_list(app.config["TOKEN_KEYS"])
    app.config["SQLALCHEMY_DATABASE_URI"] = database_uri(app)
    if app.config["SESSION_COOKIE_SECURE"] is None:
        app.config["SESSION_COOKIE_SECURE"] = app.config["NOTIFY_REDIRECT_URI"].startswith("https:")
    app.config["REMEMBER_COOKIE_SECURE"] = app.config["SESSION_COOKIE_SECURE"]
    for key in ("NOTIFY_BOT_ORIGIN", "NOTIFY_API_ORIGIN"):
        app.config[key] = app.config[key].rstrip("/")
    check_password_hash_method(app.config["PASSWORD_HASH_METHOD"], testing=app.testing)
    if app.config["LINE_LOGIN_BOT_PROMPT"] not in (None, "normal", "aggressive"):
        raise ConfigError('LINE_LOGIN_BOT_PROMPT must be "normal", "aggressive" or None')
    if isinstance(app.config["TRUSTED_HOSTS"], str):
        # From the environment as "a.example,b.example" (a JSON list works too).
        hosts = [host.strip() for host in app.config["TRUSTED_HOSTS"].split(",")]
        app.config["TRUSTED_HOSTS"] = [host for host in hosts if host] or None


def port_defaults(port: str | None) -> dict[str, str]:
    """The addresses that follow the port the site is served on (``PORT=5100 make run``):
    the built-in relay's origins and the OAuth redirect URI, unless a later source sets them.
    Nothing for an unset or unreadable PORT (the defaults say 5000)."""
    if not port or not port.strip().isdigit() or not 0 < int(port) < 65536:
        return {}
    base = f"http://127.0.0.1:{int(port)}"
    return {
        "NOTIFY_BOT_ORIGIN": f"{base}/relay",
        "NOTIFY_API_ORIGIN": f"{base}/relay",
        "NOTIFY_REDIRECT_URI": f"{base}/callback",
    }


def parse_key_list(value: str | list[str]) -> list[str]:
    """Accept the key ring as a list or as one comma-separated string."""
    if isinstance(value, str):
        value = value.split(",")
    keys = [item.strip() for item in value if item and item.strip()]
    if not keys:
        raise ConfigError("TOKEN_KEYS is empty: give at least one 'key-id:fernet-key'")
    return keys


#: The weakest work factors allowed outside tests: werkzeug's default for scrypt, and OWASP's
#: 2023 figure for PBKDF2-HMAC-SHA256 (werkzeug's own PBKDF2 default is higher).
MIN_SCRYPT_N = 2**15
MIN_PBKDF2_ITERATIONS = 600_000


def check_password_hash_method(method: str, *, testing: bool) -> None:
    """Refuse a method werkzeug cannot use, and a cheap one outside tests (:class:`ConfigError`).

    Checked here, at start-up, so that a typo or a test setting copied into production stops
    the site before the first registration, not at it.
    """
    name, *args = str(method).split(":")
    if name == "scrypt":
        usable = len(args) in (0, 3) and all(arg.isdigit() for arg in args)
        work, floor = (int(args[0]) if usable and args else MIN_SCRYPT_N), MIN_SCRYPT_N
    elif name == "pbkdf2":
        usable = (
            len(args) <= 2
            and (not args or args[0] in hashlib.algorithms_available)
            and (len(args) < 2 or args[1].isdigit())
        )
        work = int(args[1]) if usable and len(args) == 2 else MIN_PBKDF2_ITERATIONS
        floor = MIN_PBKDF2_ITERATIONS
    else:
        usable = False
    if not usable:
        raise ConfigError(
            f"PASSWORD_HASH_METHOD {method!r} is not one werkzeug knows: use 'scrypt', "
            "'scrypt:N:r:p' or 'pbkdf2:sha256:ITERATIONS'"
        )
    if work < floor and not testing:
        raise ConfigError(
            f"PASSWORD_HASH_METHOD {method!r} is too cheap outside tests: at least {floor:,}"
        )


def database_uri(app: Flask) -> str:
    """The SQLAlchemy URL: ``DATABASE_URL`` (psycopg 3 for PostgreSQL) or SQLite in instance/."""
    url = app.config.get("DATABASE_URL")
    if not url:
        return "sqlite:///" + str(Path(app.instance_path) / "notify_site.sqlite3")
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _secrets_path(app: Flask) -> Path:
    return Path(app.instance_path) / SECRETS_FILE


def _read_secrets_file(app: Flask) -> dict[str, Any]:
    path = _secrets_path(app)
    if not path.exists():
        return {}
    with path.open(encoding="utf-8") as handle:
        return json.load(handle)


def new_secrets() -> dict[str, Any]:
    """Fresh values for every generated secret."""
    return {
        "SECRET_KEY": secrets.token_urlsafe(48),
        "TOKEN_KEYS": [f"k{secrets.token_hex(4)}:{Fernet.generate_key().decode()}"],
    }


def ensure_secrets(app: Flask) -> dict[str, Any]:
    """Return the generated secrets, creating ``instance/secrets.json`` (0600) if absent.

    Safe when several processes start at once: the file is written aside and linked into place,
    so exactly one process creates it and every other one reads that same file.
    """
    path = _secrets_path(app)
    make_private_dir(path.parent)
    if path.exists():
        return _read_secrets_file(app)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".secrets-")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(new_secrets(), handle, indent=2)
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)
    finally:
        os.unlink(tmp)
    return _read_secrets_file(app)


def save_secrets(app: Flask, values: dict[str, Any]) -> None:
    """Merge ``values`` into ``instance/secrets.json``, keeping it 0600."""
    current = ensure_secrets(app)
    current.update(values)
    path = _secrets_path(app)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".secrets-")
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(current, handle, indent=2)
    os.replace(tmp, path)
