"""The channel's settings, its access token, and the line-bot-sdk clients that use it.

Two token sources, chosen by configuration:

* ``RELAY_LINE_CHANNEL_ACCESS_TOKEN``: a token given as it is (long-lived, or managed elsewhere);
* ``RELAY_LINE_PRIVATE_KEY_JWK``: the relay issues v2.1 tokens itself from a JWT assertion
  (RS256, signed with the channel's assertion signing key, whose ``kid`` the JWK carries),
  stores them encrypted with the site's key ring, renews them
  ``RELAY_LINE_TOKEN_RENEW_BEFORE`` seconds before they expire, and revokes the ones it
  replaced. One process at a time issues (a lease on the channel's ``relay_line_channels``
  row); the others wait for its token instead of issuing, and revoking, their own.

The JWT is built with joserfc (the JOSE library Authlib itself now uses; ``authlib.jose`` is
deprecated and warns). Everything else goes through line-bot-sdk v3. The SDK's API classes
hard-code ``https://api.line.me`` as their host, so :func:`_point` sets the configured base URL
on each one: that is how the tests aim the relay at their fake server.

No function here logs, raises or returns a secret except :func:`access_token` (to its caller).

The SDK and joserfc are imported inside the functions that use them, here and in the other
``line`` modules: importing line-bot-sdk takes about a second (its many pydantic models), which
every web and worker process would otherwise pay at start, channel or no channel.

Past 400 lines on purpose: one idea, the channel's credentials and the SDK clients that
use them; the token lease and the quota read share the same settings and errors.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

from flask import current_app
from sqlalchemy import or_, select, update

from notify_site.crypto import KeyRingError
from notify_site.db_types import utcnow
from notify_site.extensions import db
from notify_site.keyring import keyring
from notify_site.relay.models import RelayLineChannel, RelayLineToken

log = logging.getLogger(__name__)

JWT_AUDIENCE = "https://api.line.me/"
CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
# LINE accepts an assertion that expires at most 30 minutes ahead.
ASSERTION_LIFETIME = 30 * 60
MAX_TOKEN_EXP = 30 * 24 * 3600
# How often a process waiting for another's token issue looks for the new token.
ISSUE_WAIT_STEP = 0.1


class ChannelConfigError(RuntimeError):
    """The channel's configuration cannot work; the message names the key, never a value."""


class ChannelError(RuntimeError):
    """A call to LINE about the channel itself failed (token issue, verify, quota...)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass(frozen=True)
class ChannelSettings:
    """The channel as configured. ``repr`` shows no secret."""

    channel_id: str
    channel_secret: str = field(repr=False)
    access_token: str | None = field(default=None, repr=False)
    private_jwk: dict[str, Any] | None = field(default=None, repr=False)
    token_exp: int = MAX_TOKEN_EXP
    renew_before: int = 3 * 24 * 3600
    api_base_url: str = "https://api.line.me"
    data_base_url: str = "https://api-data.line.me"
    timeout: float = 10
    public_base_url: str = ""
    basic_id: str | None = None
    add_friend_url: str | None = None
    pairing_ttl: int = 600

    @property
    def issues_tokens(self) -> bool:
        return self.access_token is None


def settings_from_config(config: dict[str, Any]) -> ChannelSettings | None:
    """The channel settings, or None in sandbox mode; ChannelConfigError when half-configured."""
    channel_id = config.get("RELAY_LINE_CHANNEL_ID")
    secret = config.get("RELAY_LINE_CHANNEL_SECRET")
    token = config.get("RELAY_LINE_CHANNEL_ACCESS_TOKEN")
    jwk = config.get("RELAY_LINE_PRIVATE_KEY_JWK")
    if not any((channel_id, secret, token, jwk)):
        return None
    if not secret:
        raise ChannelConfigError("RELAY_LINE_CHANNEL_SECRET is required in channel mode")
    if not channel_id:
        raise ChannelConfigError("RELAY_LINE_CHANNEL_ID is required in channel mode")
    if not token and not jwk:
        raise ChannelConfigError(
            "channel mode needs RELAY_LINE_CHANNEL_ACCESS_TOKEN or RELAY_LINE_PRIVATE_KEY_JWK"
        )
    private_jwk = None
    if not token:
        private_jwk = _parse_jwk(jwk)
    token_exp = int(config.get("RELAY_LINE_TOKEN_EXP") or MAX_TOKEN_EXP)
    if not 60 <= token_exp <= MAX_TOKEN_EXP:
        raise ChannelConfigError(f"RELAY_LINE_TOKEN_EXP must be 60 to {MAX_TOKEN_EXP} seconds")
    renew_before = int(config.get("RELAY_LINE_TOKEN_RENEW_BEFORE") or 0)
    if not 0 <= renew_before < token_exp:
        raise ChannelConfigError("RELAY_LINE_TOKEN_RENEW_BEFORE must be below RELAY_LINE_TOKEN_EXP")
    public = (config.get("RELAY_PUBLIC_BASE_URL") or "").rstrip("/")
    if not public:
        raise ChannelConfigError(
            "RELAY_PUBLIC_BASE_URL is required in channel mode (LINE fetches uploaded images "
            "from it)"
        )
    if not public.startswith("https://"):
        # LINE fetches images over HTTPS only (line-platform.md B1): every uploaded image would
        # be refused. Only a development setup, knowingly, may run so.
        if not config.get("RELAY_LINE_ALLOW_HTTP_PUBLIC_URL"):
            raise ChannelConfigError(
                "RELAY_PUBLIC_BASE_URL must start with https:// in channel mode (LINE fetches "
                "images over HTTPS only); set RELAY_LINE_ALLOW_HTTP_PUBLIC_URL for development"
            )
        log.warning(
            "RELAY_PUBLIC_BASE_URL is not https (allowed for development): LINE will refuse "
            "uploaded images, which are then reported and their text sent without them"
        )
    basic_id = config.get("RELAY_LINE_BOT_BASIC_ID") or None
    add_friend = config.get("RELAY_LINE_ADD_FRIEND_URL") or None
    if add_friend is None and basic_id:
        add_friend = "https://line.me/R/ti/p/" + quote(basic_id, safe="")
    return ChannelSettings(
        channel_id=str(channel_id),
        channel_secret=str(secret),
        access_token=str(token) if token else None,
        private_jwk=private_jwk,
        token_exp=token_exp,
        renew_before=renew_before,
        api_base_url=str(config["RELAY_LINE_API_BASE_URL"]).rstrip("/"),
        data_base_url=str(config["RELAY_LINE_API_DATA_BASE_URL"]).rstrip("/"),
        timeout=float(config["RELAY_LINE_TIMEOUT"]),
        public_base_url=public,
        basic_id=basic_id,
        add_friend_url=add_friend,
        pairing_ttl=int(config["RELAY_LINE_PAIRING_TTL"]),
    )


def _parse_jwk(value: Any) -> dict[str, Any]:
    from joserfc.jwk import RSAKey

    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise ChannelConfigError("RELAY_LINE_PRIVATE_KEY_JWK is not JSON") from None
    if not isinstance(value, dict) or value.get("kty") != "RSA" or "d" not in value:
        raise ChannelConfigError("RELAY_LINE_PRIVATE_KEY_JWK must be a private RSA JWK")
    if not value.get("kid"):
        raise ChannelConfigError(
            "RELAY_LINE_PRIVATE_KEY_JWK has no kid: add the key id the LINE console showed"
        )
    try:
        RSAKey.import_key(value)
    except Exception:  # noqa: BLE001 - joserfc raises several types; none may leak the key
        raise ChannelConfigError("RELAY_LINE_PRIVATE_KEY_JWK is not a usable RSA key") from None
    return dict(value)


def current_settings() -> ChannelSettings | None:
    """The running app's channel settings (None in sandbox mode)."""
    return current_app.extensions.get("notify_site.relay.line")


def require_settings() -> ChannelSettings:
    settings = current_settings()
    if settings is None:
        raise ChannelConfigError("the relay is in sandbox mode: no LINE channel is configured")
    return settings


# --- v2.1 channel access tokens ----------------------------------------------------------


def build_assertion(settings: ChannelSettings, now: float | None = None) -> str:
    """The signed JWT LINE wants for a v2.1 token (line-platform.md B4)."""
    from joserfc import jwt
    from joserfc.jwk import RSAKey

    if settings.private_jwk is None:
        raise ChannelConfigError("no RELAY_LINE_PRIVATE_KEY_JWK to sign an assertion with")
    now = int(now if now is not None else time.time())
    key = RSAKey.import_key(settings.private_jwk)
    header = {"alg": "RS256", "typ": "JWT", "kid": settings.private_jwk["kid"]}
    claims = {
        "iss": settings.channel_id,
        "sub": settings.channel_id,
        "aud": JWT_AUDIENCE,
        "exp": now + ASSERTION_LIFETIME,
        "token_exp": settings.token_exp,
    }
    return jwt.encode(header, claims, key)


def token_context(token_id: int) -> str:
    """What a v2.1 channel token's ciphertext is bound to (checked on every decrypt)."""
    return f"relay-line-token:{token_id}"


def _point(api: Any, base_url: str) -> Any:
    api.line_base_path = base_url
    return api


def _oauth_api(settings: ChannelSettings):
    from linebot.v3 import oauth

    client = oauth.ApiClient(oauth.Configuration(host=settings.api_base_url))
    return _point(oauth.ChannelAccessToken(client), settings.api_base_url)


def issue_token(settings: ChannelSettings, *, now: datetime | None = None) -> RelayLineToken:
    """Issue a v2.1 token, store it encrypted, then revoke the ones it replaces; commits."""
    from linebot.v3 import oauth

    now = now or utcnow()
    api = _oauth_api(settings)
    try:
        answer = api.issue_channel_token_by_jwt(
            "client_credentials",
            CLIENT_ASSERTION_TYPE,
            build_assertion(settings, now.timestamp()),
            _request_timeout=settings.timeout,
        )
    except oauth.ApiException as error:
        raise ChannelError(
            f"LINE refused to issue a channel access token (HTTP {error.status})", error.status
        ) from None
    except Exception as error:  # noqa: BLE001 - urllib3 errors: network, timeout
        raise ChannelError(
            f"could not reach LINE to issue a token ({type(error).__name__})"
        ) from None
    row = RelayLineToken(
        key_id=answer.key_id,
        issued_at=now,
        expires_at=now + timedelta(seconds=int(answer.expires_in)),
    )
    db.session.add(row)
    db.session.flush()
    row.token_ciphertext = keyring().encrypt(answer.access_token, context=token_context(row.id))
    db.session.commit()
    log.info("relay: issued LINE channel access token %s (key id %s)", row.id, row.key_id)
    revoke_replaced_tokens(settings, keep=row.id, now=now)
    return row


def revoke_replaced_tokens(settings: ChannelSettings, *, keep: int, now: datetime) -> int:
    """Revoke every stored token but ``keep``; returns how many were revoked. Commits.

    A token LINE cannot be told about now (network) stays listed and is tried again next time;
    an expired one is only marked, as LINE no longer counts it.
    """
    api = _oauth_api(settings)
    revoked = 0
    rows = db.session.scalars(
        select(RelayLineToken).where(RelayLineToken.revoked_at.is_(None), RelayLineToken.id != keep)
    ).all()
    for row in rows:
        if row.expires_at > now and row.token_ciphertext:
            token = keyring().decrypt(row.token_ciphertext, context=token_context(row.id))
            try:
                api.revoke_channel_token_by_jwt(
                    settings.channel_id,
                    settings.channel_secret,
                    token,
                    _request_timeout=settings.timeout,
                )
            except Exception as error:  # noqa: BLE001 - retried on the next renewal
                log.warning(
                    "relay: could not revoke LINE token %s (%s); will try again",
                    row.id,
                    getattr(error, "status", type(error).__name__),
                )
                continue
        row.revoked_at = now
        row.token_ciphertext = ""
        revoked += 1
    db.session.commit()
    return revoked


def access_token(settings: ChannelSettings | None = None, *, now: datetime | None = None) -> str:
    """The channel access token to call LINE with, issuing a new v2.1 token when due.

    Issuing is serialised across processes (see :func:`_issue_once`): when several find the
    token due at once, one issues and the others use its token, so none revokes another's.
    """
    settings = settings or require_settings()
    if settings.access_token is not None:
        return settings.access_token
    now = now or utcnow()
    token = _usable_token(settings, now)
    if token is not None:
        return token
    return _issue_once(settings, now)


def _usable_token(settings: ChannelSettings, now: datetime) -> str | None:
    """The stored token that is not due for renewal, if any (read afresh from the database)."""
    row = db.session.scalar(
        select(RelayLineToken)
        .where(
            RelayLineToken.revoked_at.is_(None),
            RelayLineToken.expires_at > now + timedelta(seconds=settings.renew_before),
        )
        .order_by(RelayLineToken.expires_at.desc())
        .limit(1)
        .execution_options(populate_existing=True)
    )
    if row is None:
        return None
    try:
        return keyring().decrypt(row.token_ciphertext, context=token_context(row.id))
    except KeyRingError as error:
        # Its key left TOKEN_KEYS before rotate-keys moved it (rotate-keys covers these
        # rows; it reports them when their key is missing): the token cannot be read, so
        # it is dropped and a new one issued. LINE lets it expire.
        log.warning("relay: stored LINE token %s unreadable (%s); issuing anew", row.id, error)
        row.revoked_at = now
        row.token_ciphertext = ""
        db.session.commit()
        return None


def issue_lease_seconds(settings: ChannelSettings) -> int:
    """How long a process may hold the right to issue: an issue and a revoke call, and more."""
    return max(30, int(settings.timeout * 3) + 5)


def _issue_once(settings: ChannelSettings, now: datetime) -> str:
    """Issue a token unless another process is doing it; then wait for and use its token.

    The right to issue is a lease on the channel's ``relay_line_channels`` row, taken with a
    conditional UPDATE (``issuing_until`` empty or past) and committed at once. That works the
    same on PostgreSQL (the UPDATE locks the row; a concurrent one waits, then finds the lease
    taken) and on SQLite (one writer at a time), and no database lock is held while LINE is
    called. The winner looks once more for a usable token (another process may have just
    stored one), issues, and releases the lease. The others poll for the new token until the
    lease runs out; a lease left by a process that died simply expires, and the next caller
    takes it over.
    """
    holder = secrets.token_hex(8)
    lease = issue_lease_seconds(settings)
    deadline = time.monotonic() + lease + 5
    while True:
        if _claim_issue_lease(settings, holder, lease):
            try:
                token = _usable_token(settings, now)
                if token is None:
                    row = issue_token(settings, now=now)
                    token = keyring().decrypt(row.token_ciphertext, context=token_context(row.id))
                return token
            finally:
                _release_issue_lease(settings, holder)
        _wait_for_other_issuer(settings)
        token = _usable_token(settings, now)
        if token is not None:
            return token
        if time.monotonic() > deadline:
            raise ChannelError(
                "another process is issuing the channel access token and has not finished"
            )


def _claim_issue_lease(settings: ChannelSettings, holder: str, lease: int) -> bool:
    """Take the channel's issuing lease if it is free or expired; commits either way."""
    from notify_site.on_conflict import dialect_insert

    wall = utcnow()
    db.session.execute(
        dialect_insert(RelayLineChannel)
        .values(channel_id=settings.channel_id)
        .on_conflict_do_nothing(index_elements=["channel_id"])
    )
    taken = db.session.execute(
        update(RelayLineChannel)
        .where(
            RelayLineChannel.channel_id == settings.channel_id,
            or_(
                RelayLineChannel.issuing_until.is_(None),
                RelayLineChannel.issuing_until < wall,
            ),
        )
        .values(issuing_until=wall + timedelta(seconds=lease), issuing_by=holder)
        .execution_options(synchronize_session=False)
    )
    claimed = taken.rowcount == 1
    db.session.commit()
    return claimed


def _release_issue_lease(settings: ChannelSettings, holder: str) -> None:
    db.session.rollback()  # whatever a failed issue left half done
    db.session.execute(
        update(RelayLineChannel)
        .where(
            RelayLineChannel.channel_id == settings.channel_id,
            RelayLineChannel.issuing_by == holder,
        )
        .values(issuing_until=None, issuing_by=None)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()


def _wait_for_other_issuer(settings: ChannelSettings) -> None:
    """Another process holds the lease: give it a moment (the tests replace this)."""
    time.sleep(ISSUE_WAIT_STEP)


def verify_token(settings: ChannelSettings, token: str) -> int:
    """Ask LINE whether ``token`` is valid; returns the seconds it has left."""
    from linebot.v3 import oauth

    api = _oauth_api(settings)
    try:
        if settings.issues_tokens:
            answer = api.verify_channel_token_by_jwt(token, _request_timeout=settings.timeout)
        else:
            answer = api.verify_channel_token(token, _request_timeout=settings.timeout)
    except oauth.ApiException as error:
        raise ChannelError(
            f"LINE says the token is not valid (HTTP {error.status})", error.status
        ) from None
    except Exception as error:  # noqa: BLE001
        raise ChannelError(f"could not reach LINE ({type(error).__name__})") from None
    if str(answer.client_id) != settings.channel_id:
        raise ChannelError("the token belongs to another channel")
    return int(answer.expires_in)


# --- The Messaging API -------------------------------------------------------------------


def messaging_api(settings: ChannelSettings | None = None, token: str | None = None):
    """A MessagingApi client aimed at the configured base URL, with a valid token."""
    from linebot.v3 import messaging

    settings = settings or require_settings()
    configuration = messaging.Configuration(
        host=settings.api_base_url, access_token=token or access_token(settings)
    )
    client = messaging.ApiClient(configuration)
    return _point(messaging.MessagingApi(client), settings.api_base_url)


@dataclass(frozen=True)
class QuotaReading:
    """This month's quota as LINE reports it: ``limit`` None when the plan has none."""

    limit: int | None
    #: Messages counted this month so far (LINE says: approximate).
    used: int

    @property
    def exhausted(self) -> bool:
        return self.limit is not None and self.used >= self.limit


def read_quota(settings: ChannelSettings) -> QuotaReading:
    """``GET /v2/bot/message/quota`` and ``/quota/consumption``; ChannelError when LINE
    cannot be asked (two cheap calls that count no message)."""
    from linebot.v3 import messaging

    api = messaging_api(settings)
    try:
        quota = api.get_message_quota(_request_timeout=settings.timeout)
        used = api.get_message_quota_consumption(_request_timeout=settings.timeout)
    except messaging.ApiException as error:
        raise ChannelError(f"LINE answered HTTP {error.status}", error.status) from None
    except Exception as error:  # noqa: BLE001 - network errors
        raise ChannelError(f"could not reach LINE ({type(error).__name__})") from None
    limit = int(quota.value) if quota.type == "limited" and quota.value is not None else None
    return QuotaReading(limit, int(used.total_usage or 0))
