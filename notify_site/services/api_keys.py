"""API keys for the JSON API (SPEC 4.3, reliability.md "Secrets at rest").

A key is ``nsk_`` followed by 32 random bytes in URL-safe Base64 (256 bits). Only its SHA-256
is stored, with the first characters (the *prefix*) so people can tell their keys apart; the
key itself is shown once, when it is created. A stolen database therefore holds no usable key,
and since the key is long and random, one unsalted hash is enough: there is nothing to guess.

What a key may reach is its owner's: the owner's connections and notifications, or every
connection when the owner is an admin.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import func, or_, select, update

from notify_site.db_types import utcnow
from notify_site.extensions import db
from notify_site.models import ApiKey, Connection, Notification, User
from notify_site.services import ServiceError

KEY_PREFIX = "nsk_"
KEY_RANDOM_BYTES = 32
# What the list shows of each key: "nsk_" and the first 8 random characters.
DISPLAY_PREFIX_CHARS = 12
NAME_MAX_CHARS = 64
# Longer than any key we issue; a longer Bearer value is not worth hashing.
KEY_MAX_CHARS = 200
# last_used_at is written at most this often per key, so most requests write nothing.
TOUCH_INTERVAL = timedelta(seconds=60)


class ApiKeyError(ServiceError):
    """The key cannot be created as asked (the message says why)."""


class ApiKeyNotFoundError(ServiceError):
    """No such key, or not this user's."""


class UnknownUserError(ServiceError):
    """No account has that name."""


@dataclass(frozen=True)
class ApiKeyUsage:
    """A key as the list shows it: the row, and how many notifications it sent."""

    key: ApiKey
    volume: int


@dataclass(frozen=True)
class ConnectionPage:
    """One page of the connections a key can see."""

    items: list[Connection]
    page: int
    per_page: int
    total: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


def hash_key(plaintext: str) -> str:
    """The SHA-256 of a key, in hex: what the database keeps."""
    return hashlib.sha256(plaintext.encode()).hexdigest()


def create_api_key(user: User, name: str) -> tuple[ApiKey, str]:
    """Create a key for ``user``; returns the row and the plaintext key (shown once, never kept).

    Raises :class:`ApiKeyError` when the name is empty or too long.
    """
    name = (name or "").strip()
    if not name:
        raise ApiKeyError("Give the key a name, e.g. “CI alerts”.")
    if len(name) > NAME_MAX_CHARS:
        raise ApiKeyError(f"A key's name has at most {NAME_MAX_CHARS} characters.")
    plaintext = KEY_PREFIX + secrets.token_urlsafe(KEY_RANDOM_BYTES)
    api_key = ApiKey(
        owner_id=user.id,
        name=name,
        prefix=plaintext[:DISPLAY_PREFIX_CHARS],
        key_hash=hash_key(plaintext),
    )
    db.session.add(api_key)
    db.session.commit()
    return api_key, plaintext


def create_api_key_for_username(username: str, name: str) -> tuple[ApiKey, str]:
    """:func:`create_api_key` for the account called ``username`` (the CLI's way in)."""
    user = db.session.scalar(select(User).where(User.username == username.strip()))
    if user is None:
        raise UnknownUserError(f"There is no account called “{username}”.")
    return create_api_key(user, name)


def authenticate(plaintext: str | None) -> ApiKey | None:
    """The active key whose plaintext is ``plaintext``, else None.

    The row is found by the hash (an index lookup: its timing tells nothing about the key, only
    about a SHA-256 of it), then the hashes are compared in constant time.
    """
    if not plaintext or not plaintext.startswith(KEY_PREFIX) or len(plaintext) > KEY_MAX_CHARS:
        return None
    digest = hash_key(plaintext)
    api_key = db.session.scalar(select(ApiKey).where(ApiKey.key_hash == digest))
    if api_key is None or not hmac.compare_digest(api_key.key_hash, digest):
        return None
    if not api_key.is_active:
        return None
    return api_key


def touch(api_key: ApiKey) -> None:
    """Record that ``api_key`` was used, at most once per :data:`TOUCH_INTERVAL`.

    Most requests return without writing. When the time has come, a conditional UPDATE sets
    the time only if no other request did so meanwhile, so a burst of requests writes once.
    """
    now = utcnow()
    last = api_key.last_used_at
    if last is not None and now - last < TOUCH_INTERVAL:
        return
    db.session.execute(
        update(ApiKey)
        .where(
            ApiKey.id == api_key.id,
            or_(ApiKey.last_used_at.is_(None), ApiKey.last_used_at < now - TOUCH_INTERVAL),
        )
        .values(last_used_at=now)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()


def list_api_keys(user: User) -> list[ApiKeyUsage]:
    """The user's keys with the number of notifications each sent: active first, newest first."""
    volume = (
        select(func.count(Notification.id))
        .where(Notification.api_key_id == ApiKey.id)
        .correlate(ApiKey)
        .scalar_subquery()
    )
    rows = db.session.execute(
        select(ApiKey, volume)
        .where(ApiKey.owner_id == user.id)
        .order_by(ApiKey.revoked_at.is_not(None), ApiKey.id.desc())
    )
    return [ApiKeyUsage(key=key, volume=count) for key, count in rows]


def revoke_api_key(user: User, key_id: int) -> ApiKey:
    """Revoke one of the user's keys; it stops working at once. Revoking twice is harmless.

    Raises :class:`ApiKeyNotFoundError` for an unknown key or another user's.
    """
    api_key = db.session.get(ApiKey, key_id)
    if api_key is None or api_key.owner_id != user.id:
        raise ApiKeyNotFoundError("No such API key.")
    if api_key.revoked_at is None:
        api_key.revoked_at = utcnow()
        db.session.commit()
    return api_key


def visible_connections(user: User, *, page: int, per_page: int) -> ConnectionPage:
    """One page of the connections a key of ``user`` can see: the user's own, or all for admins.

    Ordered by id, so pages do not shift when a connection's status changes.
    """
    query = select(Connection)
    if not user.is_admin:
        query = query.where(Connection.owner_id == user.id)
    total = db.session.scalar(select(func.count()).select_from(query.subquery())) or 0
    items = db.session.scalars(
        query.order_by(Connection.id).limit(per_page).offset((page - 1) * per_page)
    )
    return ConnectionPage(items=list(items), page=page, per_page=per_page, total=total)
